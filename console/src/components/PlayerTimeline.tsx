import { Time } from "./common";
import type { Timeline, TimelineEntry } from "../types";

/** A player's recent history: what each batch of their events changed, and what was refused. */
export function PlayerTimeline({ timeline }: { timeline: Timeline }) {
  return (
    <table class="list timeline">
      <caption>
        What happened to {timeline.player_id}, newest first{timeline.complete ? "" : " (recent history only: older play is not shown)"}
      </caption>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">What</th>
          <th scope="col">Detail</th>
        </tr>
      </thead>
      <tbody>
        {timeline.entries.map((e, i) => (
          <tr key={i} class={`t-${e.kind}`}>
            <td>{"at" in e ? <Time at={e.at} /> : "—"}</td>
            <td>{label(e)}</td>
            <td>{detail(e)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function label(e: TimelineEntry): string {
  switch (e.kind) {
    case "stat":
      return "stat changed";
    case "progress":
      return "milestone";
    case "unlocked":
      return "earned";
    case "refused":
      return "refused";
    case "reward":
      return e.claim ? "reward to claim" : "reward paid";
    case "reward_claimed":
      return "reward claimed";
    case "reset":
      return "reset";
  }
}

function detail(e: TimelineEntry): string {
  switch (e.kind) {
    case "stat":
      return `${e.stat}: ${e.previous ?? "none"} → ${e.value}${e.period ? ` (${e.period})` : ""}`;
    case "progress":
      return `${e.achievement_id}: ${e.stat} ${e.current} of ${e.required}`;
    case "unlocked":
      return `${e.achievement_id}${e.occurrence > 1 ? ` (earn ${e.occurrence})` : ""}, by ${e.cause}`;
    case "refused":
      return `${e.stat ?? "grant"}${e.value !== undefined ? ` ${e.value}` : ""}: ${e.reason} (${e.code.code})`;
    case "reward":
    case "reward_claimed":
      return e.achievement_id;
    case "reset":
      return "stats, earns and rewards cleared by an admin";
  }
}
