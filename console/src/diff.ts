// Field-by-field differences between two definitions: what the conflict dialog shows
// (yours against the one another admin saved) and what "definitions as code" shows (the
// live definitions against a pasted file).

import type { AchievementDefinition, DefinitionsFile } from "./types";

/** One field that differs: its path and both values (`undefined` when absent). */
export interface FieldChange {
  path: string;
  before: unknown;
  after: unknown;
}

/** The fields where `before` and `after` differ, in path order. Arrays compare whole; empty values are alike. */
export function diffFields(before: unknown, after: unknown, path = ""): FieldChange[] {
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) => diffFields(before[key], after[key], path ? `${path}.${key}` : key));
  }
  return same(before, after) ? [] : [{ path, before, after }];
}

/** What a definitions file would change against the live one, per stat and achievement. */
export interface DefinitionsDiff {
  kind: "stat" | "achievement" | "season";
  id: string;
  action: "new" | "changed" | "absent";
  fields: FieldChange[];
}

/** Compares the live definitions with a file. `absent`: live but not in the file. */
export function diffDefinitions(live: DefinitionsFile, file: DefinitionsFile): DefinitionsDiff[] {
  const out: DefinitionsDiff[] = [];
  const kinds = [
    ["stat", live.stats ?? {}, file.stats ?? {}],
    ["season", live.seasons ?? {}, file.seasons ?? {}],
    ["achievement", live.achievements ?? {}, file.achievements ?? {}],
  ] as const;
  for (const [kind, ours, theirs] of kinds) {
    const ids = [...new Set([...Object.keys(ours), ...Object.keys(theirs)])].sort();
    for (const id of ids) {
      const a = (ours as Record<string, unknown>)[id];
      const b = (theirs as Record<string, unknown>)[id];
      if (a === undefined) out.push({ kind, id, action: "new", fields: diffFields({}, b) });
      else if (b === undefined) out.push({ kind, id, action: "absent", fields: [] });
      else {
        const fields = diffFields(a, b);
        if (fields.length) out.push({ kind, id, action: "changed", fields });
      }
    }
  }
  return out;
}

/** The definitions file of what is live (archived achievements left out), as `laurel defs export` writes it. */
export function exportFile(
  stats: { name: string; version: number }[],
  achievements: AchievementDefinition[],
  seasons: { id: string; starts_at: string; ends_at: string }[],
): DefinitionsFile {
  const file: DefinitionsFile = { stats: {}, achievements: {} };
  for (const { name, version: _v, ...spec } of stats) file.stats![name] = spec as never;
  for (const { id, version: _v, archived, ...spec } of achievements) if (!archived) file.achievements![id] = spec;
  if (seasons.length) {
    file.seasons = {};
    for (const { id, starts_at, ends_at } of seasons) file.seasons[id] = { starts_at, ends_at };
  }
  return file;
}

/** A value as a short line of text for a diff cell. */
export function show(value: unknown): string {
  return value === undefined ? "(absent)" : JSON.stringify(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Equal, where absent, null, "", [] and {} are all "empty" (the server stores some, leaves others out). */
function same(a: unknown, b: unknown): boolean {
  return (isEmpty(a) && isEmpty(b)) || JSON.stringify(a) === JSON.stringify(b);
}

function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  return isObject(value) && Object.keys(value).length === 0;
}
