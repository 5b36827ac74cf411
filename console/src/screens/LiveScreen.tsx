import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api";
import { ErrorBox, Time } from "../components/common";
import { countOf, perSecond } from "../rate";

interface Unlock {
  unlock_id: string;
  player_id: string;
  achievement_id: string;
  title: string;
  occurrence?: number;
  unlocked_at: string;
  replay?: boolean;
}

const KEEP = 200;

/** Every player's unlocks as they happen, and their rate over the last minute. */
export function LiveScreen({ api }: { api: Api }) {
  const [unlocks, setUnlocks] = useState<Unlock[]>([]);
  const [times, setTimes] = useState<number[]>([]);
  const [state, setState] = useState("connecting");
  const [error, setError] = useState<unknown>(null);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    const abort = new AbortController();
    const tick = setInterval(() => setNow(Date.now()), 1000);
    api
      .live((event) => {
        if (event.event === "ready") setState("live");
        if (event.event === "lagged") setState("live (some unlocks were dropped: the server fell behind)");
        if (event.event === "expired") setState("ended: the token expired");
        if (event.event !== "unlocked") return;
        const unlock = JSON.parse(event.data) as Unlock;
        setUnlocks((list) => [unlock, ...list].slice(0, KEEP));
        setTimes((list) => [...list.filter((t) => t > Date.now() - 60_000), Date.now()]);
      }, abort.signal)
      .then(
        () => setState((s) => (s.startsWith("ended") ? s : "ended")),
        (e) => {
          if (!abort.signal.aborted) {
            setError(e);
            setState("ended");
          }
        },
      );
    return () => {
      abort.abort();
      clearInterval(tick);
    };
  }, [api]);

  const buckets = perSecond(times, now);
  const peak = Math.max(1, ...buckets);
  const lastMinute = buckets.reduce((a, b) => a + b, 0);
  return (
    <section aria-labelledby="live-title">
      <h1 id="live-title" tabIndex={-1}>
        Live
      </h1>
      <p role="status">
        Stream: <strong>{state}</strong> · {countOf(lastMinute, "unlock")} in the last minute
      </p>
      <ErrorBox error={error} />
      <figure class="rate">
        <svg viewBox={`0 0 ${buckets.length * 6} 60`} width="100%" height="80" role="img" aria-label={`Unlocks per second over the last minute, peak ${peak}`}>
          {buckets.map((n, i) => (
            <rect key={i} x={i * 6} y={60 - (n / peak) * 60} width={5} height={(n / peak) * 60} class="bar-fg" />
          ))}
        </svg>
        <figcaption>Unlocks per second, last 60 s</figcaption>
      </figure>
      <table class="list">
        <caption>The latest {KEEP} unlocks, newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Player</th>
            <th scope="col">Achievement</th>
          </tr>
        </thead>
        <tbody>
          {unlocks.map((u) => (
            <tr key={u.unlock_id}>
              <td>
                <Time at={u.unlocked_at} />
              </td>
              <td>
                <a href={`#/players/${encodeURIComponent(u.player_id)}`}>{u.player_id}</a>
              </td>
              <td>
                {u.title} <small>({u.achievement_id}{u.occurrence && u.occurrence > 1 ? `, earn ${u.occurrence}` : ""}{u.replay ? ", by replay" : ""})</small>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
