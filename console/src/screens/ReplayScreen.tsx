import { countOf } from "../rate";
import { useState } from "preact/hooks";
import type { Api } from "../api";
import { ConfirmDialog, ErrorBox } from "../components/common";
import { parseDefinitions } from "../file";
import type { DefinitionsFile, ReplayReport } from "../types";

/** Fold the whole history again under a definitions file: the diff first, then apply. */
export function ReplayScreen({ api }: { api: Api }) {
  const [text, setText] = useState("");
  const [report, setReport] = useState<ReplayReport | null>(null);
  const [progress, setProgress] = useState<{ phase: string; done: number; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [running, setRunning] = useState(false);
  const [confirm, setConfirm] = useState(false);

  async function run(apply: boolean) {
    setConfirm(false);
    setError(null);
    setRunning(true);
    setProgress(null);
    if (!apply) setReport(null);
    try {
      const definitions: DefinitionsFile | undefined = text.trim() ? parseDefinitions(text) : undefined;
      await api.replay({ definitions, apply, samples: 20 }, (line) => {
        if (line.type === "progress") setProgress(line);
        else if (line.type === "report") setReport(line);
        else setError(new Error(line.detail));
      });
    } catch (e) {
      setError(e);
    } finally {
      setRunning(false);
    }
  }

  async function load(file: File | undefined) {
    if (file) setText(await file.text());
  }

  return (
    <section aria-labelledby="replay-title">
      <h1 id="replay-title" tabIndex={-1}>
        Replay
      </h1>
      <p>Fold every stat event ever reported again under new definitions: see who would gain what (and who holds what the new rules would not award), then apply. Gains are granted exactly once; nothing is revoked.</p>
      <div class="field">
        <label for="replay-file">Definitions file</label>
        <input id="replay-file" type="file" accept="application/json,.json" onChange={(e) => load(e.currentTarget.files?.[0])} />
      </div>
      <div class="field">
        <label for="replay-text">…or paste it (empty: the current definitions)</label>
        <textarea id="replay-text" rows={10} spellcheck={false} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </div>
      <div class="actions">
        <button type="button" class="primary" disabled={running} onClick={() => run(false)}>
          Show the diff
        </button>
        <button type="button" class="danger" disabled={running || !report || report.applied} onClick={() => setConfirm(true)}>
          Apply…
        </button>
      </div>
      {progress && running && (
        <p>
          <label for="replay-progress">
            {progress.phase === "fold" ? "Folding the history" : "Granting"}: {progress.done} of {progress.total}
          </label>{" "}
          <progress id="replay-progress" max={Math.max(1, progress.total)} value={progress.done} />
        </p>
      )}
      <ErrorBox error={error} />
      {report && <ReplayDiff report={report} />}
      <ConfirmDialog open={confirm} title="Apply this replay?" confirm="Apply" onConfirm={() => run(true)} onCancel={() => setConfirm(false)}>
        <p>
          The definitions are saved, and {countOf(report?.gained ?? 0, "gain")} (+{report?.points_gained ?? 0} points) are granted. This cannot be taken back.
        </p>
      </ConfirmDialog>
    </section>
  );
}

function ReplayDiff({ report }: { report: ReplayReport }) {
  return (
    <section aria-labelledby="replay-report" class="report">
      <h2 id="replay-report">{report.applied ? "Applied" : "Diff"}</h2>
      <p role="status">
        {countOf(report.events, "event")} of {countOf(report.players, "player")} folded in {report.elapsed_ms} ms: {countOf(report.gained, "gain")} (+{report.points_gained} points), {countOf(report.lost, "would-be loss", "would-be losses")} (not revoked)
        {report.applied && `; ${countOf(report.granted, "grant")} appended`}.
      </p>
      {report.definitions_changed.length > 0 && <p>Definitions changed: {report.definitions_changed.join(", ")}</p>}
      <table class="list">
        <caption>Per achievement whose holders would change</caption>
        <thead>
          <tr>
            <th scope="col">Achievement</th>
            <th scope="col">Gain</th>
            <th scope="col">Would lose</th>
            <th scope="col">Points gained</th>
            <th scope="col">Some who gain</th>
            <th scope="col">Some who would lose</th>
          </tr>
        </thead>
        <tbody>
          {report.achievements.map((a) => (
            <tr key={a.id}>
              <td>
                {a.title} <small>({a.id})</small>
              </td>
              <td>
                {a.gain}
                {a.earns && a.earns > a.gain ? ` (${a.earns} earns)` : ""}
              </td>
              <td>{a.lose}</td>
              <td>{a.points_gained}</td>
              <td>{a.gain_sample.join(", ")}</td>
              <td>{a.lose_sample.join(", ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
