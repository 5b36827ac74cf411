import { countOf } from "../rate";
import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api";
import { ErrorBox } from "../components/common";
import { diffDefinitions, exportFile, show, type DefinitionsDiff } from "../diff";
import { parseDefinitions } from "../file";
import type { DefinitionsFile } from "../types";

/** The live definitions as a file to keep in the game's repository, and a diff against one. */
export function DefinitionsScreen({ api }: { api: Api }) {
  const [live, setLive] = useState<DefinitionsFile | null>(null);
  const [text, setText] = useState("");
  const [diff, setDiff] = useState<DefinitionsDiff[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [download, setDownload] = useState<string | null>(null);

  useEffect(() => {
    Promise.all([api.stats(), api.achievements(), api.seasons()]).then(([s, a, z]) => setLive(exportFile(s, a, z)), setError);
  }, [api]);

  useEffect(() => {
    if (!live) return;
    const url = URL.createObjectURL(new Blob([JSON.stringify(live, null, 2) + "\n"], { type: "application/json" }));
    setDownload(url);
    return () => URL.revokeObjectURL(url);
  }, [live]);

  async function compare() {
    setError(null);
    setDiff(null);
    try {
      const file = parseDefinitions(text);
      // The server checks the file whole first: a bad one is refused here, field by field.
      await api.applyDefinitions(file, true);
      setDiff(diffDefinitions(live!, file));
    } catch (e) {
      setError(e);
    }
  }

  return (
    <section aria-labelledby="defs-title">
      <h1 id="defs-title" tabIndex={-1}>
        Definitions as code
      </h1>
      <ErrorBox error={error} />
      <h2>Export</h2>
      <p>
        The live definitions (archived achievements left out), as <code>laurel defs export</code> prints them and <code>laurel defs apply</code> takes them.
      </p>
      {download && (
        <a class="button" href={download} download="laurel-definitions.json">
          Download laurel-definitions.json
        </a>
      )}
      <details>
        <summary>Show the file</summary>
        <pre class="code">{live ? JSON.stringify(live, null, 2) : "Loading…"}</pre>
      </details>
      <h2>Compare with a file</h2>
      <div class="field">
        <label for="defs-text">Definitions file</label>
        <textarea id="defs-text" rows={10} spellcheck={false} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </div>
      <button type="button" class="primary" disabled={!live || !text.trim()} onClick={compare}>
        Compare
      </button>
      {diff && (
        <table class="list">
          <caption>{diff.length === 0 ? "The file matches the live definitions." : `${countOf(diff.length, "definition differs", "definitions differ")} (apply with laurel defs apply, or the replay screen)`}</caption>
          <thead>
            <tr>
              <th scope="col">Definition</th>
              <th scope="col">Change</th>
              <th scope="col">Fields (live → file)</th>
            </tr>
          </thead>
          <tbody>
            {diff.map((d) => (
              <tr key={`${d.kind}/${d.id}`}>
                <td>
                  {d.kind} {d.id}
                </td>
                <td>{d.action === "absent" ? "not in the file (kept unless pruned)" : d.action}</td>
                <td>
                  <ul>
                    {d.fields.map((f) => (
                      <li key={f.path}>
                        <code>{f.path}</code>: {show(f.before)} → {show(f.after)}
                      </li>
                    ))}
                  </ul>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
