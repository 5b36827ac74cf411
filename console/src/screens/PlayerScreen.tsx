import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api";
import { ConfirmDialog, ErrorBox, Time } from "../components/common";
import { PlayerTimeline } from "../components/PlayerTimeline";
import { whyNot } from "../why";
import type { AchievementDefinition, PlayerAchievements, PlayerStats, Refusal, Timeline } from "../types";

/** One player: stats, progress per condition, what they earned and when, what was refused. */
export function PlayerScreen({ api, id }: { api: Api; id: string | null }) {
  const [lookup, setLookup] = useState(id ?? "");
  const [view, setView] = useState<PlayerAchievements | null>(null);
  const [stats, setStats] = useState<PlayerStats | null>(null);
  const [refusals, setRefusals] = useState<Refusal[]>([]);
  const [timeline, setTimeline] = useState<Timeline | null>(null);
  const [defs, setDefs] = useState<AchievementDefinition[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [grantId, setGrantId] = useState("");
  const [confirmGrant, setConfirmGrant] = useState(false);
  const [confirmReset, setConfirmReset] = useState(false);
  const [status, setStatus] = useState("");

  async function load(player: string) {
    setError(null);
    try {
      const [v, s, r, all, t] = await Promise.all([api.playerAchievements(player), api.playerStats(player), api.refusals(player), api.achievements(), api.timeline(player)]);
      setView(v);
      setStats(s);
      setRefusals(r);
      setTimeline(t);
      setDefs(all.filter((a) => !a.archived));
    } catch (e) {
      setError(e);
    }
  }

  useEffect(() => {
    if (id) void load(id);
  }, [api, id]);

  async function grant() {
    setConfirmGrant(false);
    try {
      await api.grant(id!, grantId);
      setStatus(`Granted ${grantId} to ${id}; it shows once the engine has folded it.`);
      await load(id!);
    } catch (e) {
      setError(e);
    }
  }

  async function reset() {
    setConfirmReset(false);
    setError(null);
    try {
      await api.resetPlayer(id!);
      setStatus(`Reset ${id}: their stats, earns and rewards are gone.`);
      await load(id!);
    } catch (e) {
      setError(e);
    }
  }

  return (
    <section aria-labelledby="player-title">
      <h1 id="player-title" tabIndex={-1}>
        {id ? `Player ${id}` : "Players"}
      </h1>
      <form
        class="toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          location.hash = `#/players/${encodeURIComponent(lookup.trim())}`;
        }}
      >
        <label for="player-id">Player id</label>
        <input id="player-id" value={lookup} onInput={(e) => setLookup(e.currentTarget.value)} required />
        <button type="submit">Look up</button>
        {id && (
          <button type="button" onClick={() => load(id)}>
            Refresh
          </button>
        )}
      </form>
      <ErrorBox error={error} />
      <p role="status">{status}</p>
      {id && view && stats && (
        <>
          <h2>Stats</h2>
          <dl class="stats">
            <dt>Points</dt>
            <dd>{stats.points_total}</dd>
            {Object.entries(stats.stats).map(([name, value]) => (
              <Fragment key={name}>
                <dt>{name}</dt>
                <dd>{value}</dd>
              </Fragment>
            ))}
          </dl>
          <h2>Achievements</h2>
          <table class="list">
            <caption>What {id} earned, and progress per condition on the rest</caption>
            <thead>
              <tr>
                <th scope="col">Achievement</th>
                <th scope="col">Earned</th>
                <th scope="col">Progress</th>
              </tr>
            </thead>
            <tbody>
              {view.achievements.map((a) => (
                <tr key={a.id} class={a.earned ? "earned" : undefined}>
                  <td>
                    <a href={`#/achievements/${encodeURIComponent(a.id)}`}>{a.title}</a> <small>({a.id})</small>
                  </td>
                  <td>
                    {a.earned ? (
                      <>
                        <Time at={a.earned_at} />
                        {(a.times_earned ?? 1) > 1 && <span> · {a.times_earned} times</span>}
                      </>
                    ) : (
                      "not yet"
                    )}
                  </td>
                  <td>
                    <ul class="progress">
                      {a.progress.map((p) => (
                        <li key={p.stat}>
                          <label>
                            {p.stat}: {p.current} / {p.required}{" "}
                            <progress max={Math.max(1, Math.abs(p.required))} value={Math.min(Math.abs(p.current), Math.abs(p.required))} />
                          </label>
                        </li>
                      ))}
                    </ul>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Why not yet</h2>
          <WhyNot defs={defs} view={view} stats={stats} refusals={refusals} />
          <h2>Timeline</h2>
          {timeline && (timeline.entries.length === 0 ? <p>Nothing in the recent history.</p> : <PlayerTimeline timeline={timeline} />)}
          <h2>Refusals</h2>
          {refusals.length === 0 ? (
            <p>No refused events.</p>
          ) : (
            <table class="list">
              <caption>The engine's latest refusals of {id}'s events, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Stat</th>
                  <th scope="col">Value</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {refusals.map((r) => (
                  <tr key={r.event_id}>
                    <td>
                      <Time at={r.at} />
                    </td>
                    <td>{r.stat ?? "(grant)"}</td>
                    <td>{r.value ?? ""}</td>
                    <td>
                      {r.reason} <code>{r.code.code}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h2>Grant an achievement</h2>
          <div class="toolbar">
            <label for="grant-id">Achievement</label>
            <select id="grant-id" value={grantId} onChange={(e) => setGrantId(e.currentTarget.value)}>
              <option value="">Choose…</option>
              {defs.map((d) => (
                <option value={d.id} key={d.id}>
                  {d.title} ({d.id})
                </option>
              ))}
            </select>
            <button type="button" disabled={!grantId} onClick={() => setConfirmGrant(true)}>
              Grant…
            </button>
          </div>
          <ConfirmDialog open={confirmGrant} title={`Grant ${grantId} to ${id}?`} confirm="Grant" onConfirm={grant} onCancel={() => setConfirmGrant(false)}>
            <p>The grant goes on the log: it cannot be taken back, and a replay keeps it.</p>
          </ConfirmDialog>
          <h2>Test player</h2>
          <p>
            For QA and support: a reset clears the player's stats, earns, rewards and refusals (an event on the log, so the history and replays stay true). The server allows it
            only for ids matching its <code>--test-players</code> patterns.
          </p>
          <button type="button" class="danger" onClick={() => setConfirmReset(true)}>
            Reset test player…
          </button>
          <ConfirmDialog open={confirmReset} title={`Reset ${id}?`} confirm="Reset" onConfirm={reset} onCancel={() => setConfirmReset(false)}>
            <p>Everything {id} has is cleared; what they earn next are new unlocks. The audit log records it.</p>
          </ConfirmDialog>
        </>
      )}
    </section>
  );
}

/** For each live achievement the player has not earned, what still stands in the way. */
function WhyNot({ defs, view, stats, refusals }: { defs: AchievementDefinition[]; view: PlayerAchievements; stats: PlayerStats; refusals: Refusal[] }) {
  const earned = new Set(view.achievements.filter((a) => a.earned).map((a) => a.id));
  const open = defs.filter((d) => !earned.has(d.id));
  if (open.length === 0) return <p>Everything live is earned.</p>;
  const now = Date.now();
  return (
    <ul class="why">
      {open.slice(0, 50).map((d) => (
        <li key={d.id}>
          <strong>{d.title}</strong> <small>({d.id})</small>:{" "}
          {whyNot(d, stats.stats, earned, refusals, now).join("; ") || "every condition holds now (the engine may not have folded the latest events yet)"}
        </li>
      ))}
    </ul>
  );
}
