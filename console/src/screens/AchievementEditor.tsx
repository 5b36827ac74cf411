import { useEffect, useRef, useState } from "preact/hooks";
import type { Api } from "../api";
import { ConfirmDialog, ErrorBox, Field, described } from "../components/common";
import { IconPreview } from "../components/IconPreview";
import { diffFields, show, type FieldChange } from "../diff";
import { specOfDefinition } from "../definitions";
import { DraftError, draftOf, emptyDraft, specOf, type Draft } from "../editor";
import { ApiError, fieldErrors, isConflict } from "../problem";
import type { AchievementDefinition, StatDefinition } from "../types";

/** A conflict: another admin saved `theirs` after this editor loaded its version. */
interface Conflict {
  theirs: AchievementDefinition;
  changes: FieldChange[];
}

/** What the editor of a just-created achievement says first (it is a new editor, on a new route). */
let flash = "";

/** Every field of one achievement, checked by the server as it is typed. */
export function AchievementEditor({ api, id }: { api: Api; id: string | null }) {
  const [draft, setDraft] = useState<Draft | null>(id === null ? emptyDraft() : null);
  const [stored, setStored] = useState<AchievementDefinition | null>(null);
  const [stats, setStats] = useState<StatDefinition[]>([]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState(() => {
    const said = flash;
    flash = "";
    return said;
  });
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [newLang, setNewLang] = useState("");
  const [confirmArchive, setConfirmArchive] = useState(false);
  const checking = useRef(0);

  useEffect(() => {
    api.stats().then(setStats, setError);
    if (id !== null)
      api.achievement(id).then((def) => {
        setStored(def);
        setDraft(draftOf(def));
      }, setError);
  }, [api, id]);

  // Live validation: the draft checked by the server (a dry run of a definitions file
  // holding it) a moment after the last keystroke; its 422 names each field.
  useEffect(() => {
    if (!draft || !draft.id) return;
    const ticket = ++checking.current;
    const timer = setTimeout(async () => {
      let found: Record<string, string> = {};
      try {
        await api.applyDefinitions({ achievements: { [draft.id]: specOf(draft) } }, true);
      } catch (e) {
        found = errorsOf(e, draft.id);
      }
      if (ticket === checking.current) setErrors(found);
    }, 350);
    return () => clearTimeout(timer);
  }, [draft]);

  if (!draft) {
    return (
      <section>
        <h1 tabIndex={-1}>Achievement {id}</h1>
        <ErrorBox error={error} />
        {!error && <p>Loading…</p>}
      </section>
    );
  }

  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => setDraft({ ...draft, [key]: value });
  const input = (key: "id" | "title" | "locked_description" | "unlocked_description" | "locked_icon" | "unlocked_icon" | "points" | "order" | "requires" | "available_from" | "available_until" | "tags" | "min_contribution", label: string, hint?: string, type = "text") => (
    <Field id={`f-${key}`} label={label} error={errors[key]} hint={hint}>
      <input {...described(`f-${key}`, errors[key], hint)} type={type} value={draft[key]} disabled={key === "id" && stored !== null} onInput={(e) => set(key, e.currentTarget.value)} />
    </Field>
  );

  async function save(overwrite = false) {
    if (!draft) return;
    setError(null);
    setStatus("");
    try {
      const spec = specOf(draft);
      const version = overwrite ? conflict?.theirs.version : stored?.version;
      const saved = await api.putAchievement(draft.id, spec, version);
      setStored(saved);
      setDraft(draftOf(saved));
      setConflict(null);
      setErrors({});
      setStatus(`Saved version ${saved.version}.`);
      flash = id === null ? `Saved version ${saved.version}.` : "";
      if (id === null) location.hash = `#/achievements/${encodeURIComponent(saved.id)}`;
    } catch (e) {
      if (e instanceof DraftError) setErrors({ [e.field]: e.message });
      else if (isConflict(e)) {
        const theirs = await api.achievement(draft.id);
        setConflict({ theirs, changes: diffFields(specOfDefinition(theirs), safeSpec(draft)) });
      } else {
        setErrors(errorsOf(e, draft.id));
        setError(e);
      }
    }
  }

  async function upload(slot: "locked" | "unlocked", file: File | undefined) {
    if (!file || !draft) return;
    setError(null);
    try {
      if (!stored) throw new Error("save the achievement before uploading its icons");
      const saved = await api.uploadIcon(draft.id, slot, file, stored.version);
      setStored(saved);
      setDraft({ ...draft, [`${slot}_icon`]: saved[`${slot}_icon`] ?? "" });
      setStatus(`Uploaded the ${slot} icon.`);
    } catch (e) {
      setError(e);
    }
  }

  async function archive() {
    setConfirmArchive(false);
    try {
      await api.archiveAchievement(draft!.id);
      location.hash = "#/achievements";
    } catch (e) {
      setError(e);
    }
  }

  const langs = Object.keys(draft.localizations).sort();
  return (
    <section aria-labelledby="editor-title">
      <h1 id="editor-title" tabIndex={-1}>
        {stored ? `Achievement ${stored.id}` : "New achievement"}
        {stored && <span class="version"> · version {stored.version}{stored.archived ? " · archived" : ""}</span>}
      </h1>
      <form
        class="editor"
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <fieldset>
          <legend>Identity and texts</legend>
          {input("id", "Id", "letters, digits, _ and -; fixed once saved")}
          {input("title", "Title")}
          {input("locked_description", "Locked description")}
          {input("unlocked_description", "Unlocked description")}
          <Field id="f-visibility" label="Visibility" error={errors.visibility}>
            <select {...described("f-visibility", errors.visibility)} value={draft.visibility} onChange={(e) => set("visibility", e.currentTarget.value as Draft["visibility"])}>
              <option value="visible">visible</option>
              <option value="secret">secret (texts hidden until earned)</option>
              <option value="hidden">hidden (not listed until earned)</option>
            </select>
          </Field>
          {input("points", "Points", undefined, "number")}
          {input("order", "Order", "sort key of lists", "number")}
          {input("tags", "Tags", "comma-separated")}
        </fieldset>

        <fieldset>
          <legend>Conditions (all must hold)</legend>
          {draft.conditions.map((c, i) => {
            const at = `conditions[${i}]`;
            const message = errors[`${at}.stat`] || errors[`${at}.${c.op}`] || errors[at];
            const update = (patch: Partial<typeof c>) => set("conditions", draft.conditions.map((x, j) => (j === i ? { ...x, ...patch } : x)));
            return (
              <div class="condition" role="group" aria-label={`Condition ${i + 1}`} key={i}>
                <label for={`c-stat-${i}`}>Stat</label>
                <input id={`c-stat-${i}`} list="stat-names" value={c.stat} aria-invalid={message ? true : undefined} onInput={(e) => update({ stat: e.currentTarget.value })} />
                <label for={`c-op-${i}`}>Comparison</label>
                <select id={`c-op-${i}`} value={c.op} onChange={(e) => update({ op: e.currentTarget.value as typeof c.op })}>
                  <option value="at_least">at least</option>
                  <option value="at_most">at most</option>
                </select>
                <label for={`c-value-${i}`}>Value</label>
                <input id={`c-value-${i}`} type="number" value={c.value} onInput={(e) => update({ value: e.currentTarget.value })} />
                <button type="button" onClick={() => set("conditions", draft.conditions.filter((_, j) => j !== i))}>
                  Remove condition {i + 1}
                </button>
                {message && (
                  <small class="field-error" role="alert">
                    {message}
                  </small>
                )}
              </div>
            );
          })}
          <datalist id="stat-names">
            {stats.map((s) => (
              <option value={s.name} key={s.name} />
            ))}
          </datalist>
          <button type="button" onClick={() => set("conditions", [...draft.conditions, { stat: stats[0]?.name ?? "", op: "at_least", value: "1" }])}>
            Add condition
          </button>
          {errors.conditions && <small class="field-error">{errors.conditions}</small>}
          {input("requires", "Requires", "achievement ids, comma-separated")}
        </fieldset>

        <fieldset>
          <legend>Availability window</legend>
          {input("available_from", "Available from", "RFC 3339, e.g. 2026-12-24T00:00:00Z")}
          {input("available_until", "Available until", "RFC 3339")}
        </fieldset>

        <fieldset>
          <legend>Repeats and rewards</legend>
          <div class="field">
            <label>
              <input type="checkbox" checked={draft.repeatable} onChange={(e) => set("repeatable", e.currentTarget.checked)} /> Repeatable
            </label>
          </div>
          {draft.repeatable && (
            <>
              <Field id="f-repeat_max" label="Most earns (empty: no limit)" error={errors["repeat.max"]}>
                <input {...described("f-repeat_max", errors["repeat.max"])} type="number" value={draft.repeat_max} onInput={(e) => set("repeat_max", e.currentTarget.value)} />
              </Field>
              <Field id="f-repeat_cooldown" label="Cooldown (seconds)" error={errors["repeat.cooldown_secs"]}>
                <input {...described("f-repeat_cooldown", errors["repeat.cooldown_secs"])} type="number" value={draft.repeat_cooldown_secs} onInput={(e) => set("repeat_cooldown_secs", e.currentTarget.value)} />
              </Field>
            </>
          )}
          <Field id="f-rewards" label="Rewards (JSON array)" error={errors.rewards}>
            <textarea {...described("f-rewards", errors.rewards)} rows={3} value={draft.rewards} onInput={(e) => set("rewards", e.currentTarget.value)} />
          </Field>
          <div class="field">
            <label>
              <input type="checkbox" checked={draft.claim} onChange={(e) => set("claim", e.currentTarget.checked)} /> Player claims the rewards
            </label>
            {errors.claim && <small class="field-error">{errors.claim}</small>}
          </div>
          {input("min_contribution", "Least contribution (community goals)", undefined, "number")}
        </fieldset>

        <fieldset class="wide">
          <legend>Localizations</legend>
          <table class="locales">
            <caption class="sr-only">Texts per language, the default first</caption>
            <thead>
              <tr>
                <th scope="col">Field</th>
                <th scope="col">default</th>
                {langs.map((lang) => (
                  <th scope="col" key={lang}>
                    {lang}{" "}
                    <button type="button" aria-label={`Remove ${lang}`} onClick={() => set("localizations", Object.fromEntries(Object.entries(draft.localizations).filter(([l]) => l !== lang)))}>
                      ×
                    </button>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {(["title", "locked_description", "unlocked_description"] as const).map((field) => (
                <tr key={field}>
                  <th scope="row">{field.replace("_", " ")}</th>
                  <td>{draft[field]}</td>
                  {langs.map((lang) => {
                    const err = errors[`localizations.${lang}.${field}`];
                    return (
                      <td key={lang}>
                        <input
                          aria-label={`${field.replace("_", " ")} in ${lang}`}
                          aria-invalid={err ? true : undefined}
                          value={draft.localizations[lang]?.[field] ?? ""}
                          onInput={(e) => set("localizations", { ...draft.localizations, [lang]: { ...draft.localizations[lang], [field]: e.currentTarget.value } })}
                        />
                        {err && <small class="field-error">{err}</small>}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
          <div class="inline">
            <label for="new-lang">Add a language (BCP 47 tag)</label>
            <input id="new-lang" value={newLang} onInput={(e) => setNewLang(e.currentTarget.value)} placeholder="fr" />
            <button
              type="button"
              disabled={!newLang.trim()}
              onClick={() => {
                set("localizations", { ...draft.localizations, [newLang.trim()]: {} });
                setNewLang("");
              }}
            >
              Add language
            </button>
          </div>
        </fieldset>

        <fieldset class="wide">
          <legend>Icons</legend>
          {input("locked_icon", "Locked icon", "an uploaded icon's digest, or a URL")}
          <div class="field">
            <label for="upload-locked">Upload the locked icon (PNG, JPEG or WebP)</label>
            <input id="upload-locked" type="file" accept="image/png,image/jpeg,image/webp" onChange={(e) => upload("locked", e.currentTarget.files?.[0])} />
          </div>
          {input("unlocked_icon", "Unlocked icon", "the locked one when empty")}
          <div class="field">
            <label for="upload-unlocked">Upload the unlocked icon</label>
            <input id="upload-unlocked" type="file" accept="image/png,image/jpeg,image/webp" onChange={(e) => upload("unlocked", e.currentTarget.files?.[0])} />
          </div>
          <IconPreview draft={draft} langs={langs} />
        </fieldset>

        <fieldset>
          <legend>Metadata</legend>
          <Field id="f-metadata" label="Metadata (JSON object, returned as is)" error={errors.metadata}>
            <textarea {...described("f-metadata", errors.metadata)} rows={4} value={draft.metadata} onInput={(e) => set("metadata", e.currentTarget.value)} />
          </Field>
        </fieldset>

        {errors[""] && (
          <p class="error" role="alert">
            {errors[""]}
          </p>
        )}
        <ErrorBox error={error && !(error instanceof ApiError && error.status === 422) ? error : null} />
        <p role="status" class="status">
          {status}
        </p>
        <div class="actions">
          <button type="submit" class="primary">
            Save
          </button>
          {stored && !stored.archived && (
            <button type="button" class="danger" onClick={() => setConfirmArchive(true)}>
              Archive
            </button>
          )}
        </div>
      </form>

      {conflict && (
        <section class="conflict" aria-labelledby="conflict-title">
          <h2 id="conflict-title">Another admin saved first</h2>
          <p>
            Version {conflict.theirs.version} was saved after you opened version {stored?.version}. Here is what differs between theirs and yours:
          </p>
          <table>
            <thead>
              <tr>
                <th scope="col">Field</th>
                <th scope="col">Theirs (saved)</th>
                <th scope="col">Yours</th>
              </tr>
            </thead>
            <tbody>
              {conflict.changes.map((c) => (
                <tr key={c.path}>
                  <th scope="row">{c.path}</th>
                  <td>{show(c.before)}</td>
                  <td>{show(c.after)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="actions">
            <button
              type="button"
              onClick={() => {
                setStored(conflict.theirs);
                setDraft(draftOf(conflict.theirs));
                setConflict(null);
              }}
            >
              Take theirs
            </button>
            <button type="button" class="danger" onClick={() => save(true)}>
              Save mine over theirs
            </button>
          </div>
        </section>
      )}
      <ConfirmDialog open={confirmArchive} title={`Archive ${draft.id}?`} confirm="Archive" onConfirm={archive} onCancel={() => setConfirmArchive(false)}>
        <p>Players who earned it keep it; nobody can earn it any more.</p>
      </ConfirmDialog>
    </section>
  );
}

/** The field errors of a refusal, with the definitions file's prefix taken off. */
function errorsOf(error: unknown, id: string): Record<string, string> {
  if (error instanceof DraftError) return { [error.field]: error.message };
  if (!(error instanceof ApiError) || (error.status !== 422 && error.status !== 400)) return {};
  const out: Record<string, string> = {};
  for (const [field, reason] of Object.entries(fieldErrors(error.problem))) {
    const key = field.replace(new RegExp(`^(definitions\\.)?achievements(\\.|\\[")${escape(id)}("\\])?\\.?`), "");
    out[key] = out[key] ? `${out[key]}; ${reason}` : reason;
  }
  return out;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function safeSpec(draft: Draft): unknown {
  try {
    return specOf(draft);
  } catch {
    return draft;
  }
}
