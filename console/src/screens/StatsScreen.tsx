import { countOf } from "../rate";
import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api";
import { ErrorBox, Field, described } from "../components/common";
import { Bars } from "../components/Bars";
import { fieldErrors, ApiError } from "../problem";
import type { StatDefinition, StatSpec, StatSummary } from "../types";

/** Stat definitions, and a form to define one. */
export function StatsScreen({ api }: { api: Api }) {
  const [stats, setStats] = useState<StatDefinition[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [name, setName] = useState("");
  const [aggregation, setAggregation] = useState<StatSpec["aggregation"]>("sum");
  const [kind, setKind] = useState<StatSpec["kind"]>("int");
  const [clientWritable, setClientWritable] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [status, setStatus] = useState("");
  const [summary, setSummary] = useState<StatSummary | null>(null);

  async function spread(stat: string) {
    setError(null);
    try {
      setSummary(await api.statSummary(stat));
    } catch (err) {
      setError(err);
    }
  }

  const load = () => api.stats().then(setStats, setError);
  useEffect(() => void load(), [api]);

  async function define(e: Event) {
    e.preventDefault();
    setErrors({});
    setError(null);
    try {
      const saved = await api.putStat(name.trim(), { aggregation, kind, client_writable: clientWritable });
      setStatus(`Defined ${saved.name} (version ${saved.version}).`);
      setName("");
      await load();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 422 || err.status === 400)) setErrors(fieldErrors(err.problem));
      setError(err);
    }
  }

  return (
    <section aria-labelledby="stats-title">
      <h1 id="stats-title" tabIndex={-1}>
        Stats
      </h1>
      <ErrorBox error={error} />
      {stats === null ? (
        <p>Loading…</p>
      ) : (
        <table class="list">
          <caption>{countOf(stats.length, "stat")}</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Aggregation</th>
              <th scope="col">Kind</th>
              <th scope="col">Bounds</th>
              <th scope="col">Writable by</th>
              <th scope="col">Scope</th>
              <th scope="col">Period</th>
              <th scope="col">Players</th>
            </tr>
          </thead>
          <tbody>
            {stats.map((s) => (
              <tr key={s.name}>
                <th scope="row">{s.name}</th>
                <td>{s.aggregation}</td>
                <td>{s.kind}</td>
                <td>{[s.min_value !== undefined ? `≥ ${s.min_value}` : "", s.max_value !== undefined ? `≤ ${s.max_value}` : "", s.max_delta !== undefined ? `Δ ≤ ${s.max_delta}` : ""].filter(Boolean).join(", ") || "—"}</td>
                <td>{s.client_writable ? "players and servers" : "servers"}</td>
                <td>{s.scope ?? "player"}</td>
                <td>{typeof s.period === "object" ? `season ${s.period.season}` : (s.period ?? "—")}</td>
                <td>
                  <button type="button" onClick={() => spread(s.name)}>
                    Spread of {s.name}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {summary && <SummaryView summary={summary} />}
      <form class="editor compact" onSubmit={define} aria-labelledby="define-stat">
        <h2 id="define-stat">Define a stat</h2>
        <Field id="s-name" label="Name" error={errors[""] || errors.name} hint="segments of letters, digits, _ and - joined by dots">
          <input {...described("s-name", errors[""] || errors.name, "x")} value={name} onInput={(e) => setName(e.currentTarget.value)} required />
        </Field>
        <Field id="s-aggregation" label="Aggregation" error={errors.aggregation}>
          <select id="s-aggregation" value={aggregation} onChange={(e) => setAggregation(e.currentTarget.value as StatSpec["aggregation"])}>
            <option value="sum">sum</option>
            <option value="max">max</option>
            <option value="min">min</option>
            <option value="latest">latest</option>
          </select>
        </Field>
        <Field id="s-kind" label="Kind" error={errors.kind}>
          <select id="s-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as StatSpec["kind"])}>
            <option value="int">int</option>
            <option value="float">float</option>
          </select>
        </Field>
        <div class="field">
          <label>
            <input type="checkbox" checked={clientWritable} onChange={(e) => setClientWritable(e.currentTarget.checked)} /> Players may report it themselves
          </label>
        </div>
        <p role="status">{status}</p>
        <button type="submit" class="primary">
          Define stat
        </button>
      </form>
    </section>
  );
}

/** A stat's values over the players, and its refusals by reason. */
function SummaryView({ summary }: { summary: StatSummary }) {
  const refusals = Object.entries(summary.refusals);
  const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));
  return (
    <section aria-labelledby="summary-title" class="summary">
      <h2 id="summary-title">{summary.stat} across players</h2>
      <p role="status">
        {summary.players} players have a value{summary.players > 0 && `, from ${fmt(summary.min!)} to ${fmt(summary.max!)}`}.
      </p>
      {summary.buckets.length > 0 && (
        <Bars data={summary.buckets.map((b) => ({ label: b.from === b.to ? fmt(b.from) : `${fmt(b.from)}–${fmt(b.to)}`, value: b.players }))} caption={`Players by value of ${summary.stat}`} unit="players" />
      )}
      <h3>Refused events by reason</h3>
      {refusals.length === 0 ? (
        <p>None refused.</p>
      ) : (
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Reason</th>
              <th scope="col">Events</th>
            </tr>
          </thead>
          <tbody>
            {refusals.map(([code, n]) => (
              <tr key={code}>
                <td>
                  <code>{code}</code>
                </td>
                <td>{n}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
