import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api";
import { ErrorBox, Time } from "../components/common";
import type { AuditEntry } from "../types";

/** Every admin action, who and when, newest first (the same through every gateway). */
export function AuditScreen({ api }: { api: Api }) {
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [who, setWho] = useState("");
  const load = () => api.audit(1000).then(setEntries, setError);
  useEffect(() => void load(), [api]);
  const shown = (entries ?? []).filter((e) => !who.trim() || (e.by ?? "").toLowerCase().includes(who.trim().toLowerCase()));
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title" tabIndex={-1}>
        Audit log
      </h1>
      <div class="toolbar">
        <label for="audit-who">Admin</label>
        <input id="audit-who" value={who} onInput={(e) => setWho(e.currentTarget.value)} placeholder="who did it" />
        <button type="button" onClick={load}>
          Refresh
        </button>
      </div>
      <ErrorBox error={error} />
      {entries === null ? (
        <p>Loading…</p>
      ) : (
        <table class="list">
          <caption>
            {shown.length} admin actions, newest first: definition changes, icons, definitions files, grants, replays
          </caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">What</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((e, i) => (
              <tr key={`${e.position}-${i}`}>
                <td>
                  <Time at={e.at} />
                </td>
                <td>{e.by ?? "(not recorded)"}</td>
                <td>{e.action}</td>
                <td>{e.what}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
