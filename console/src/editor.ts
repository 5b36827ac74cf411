// The achievement editor's form: every field of an achievement as the inputs hold it
// (text), and the conversions to and from the spec the server takes. Nothing here decides
// what is valid: the server's 422 does, field by field.

import type { AchievementDefinition, AchievementSpec, Condition, Localization, Visibility } from "./types";

export interface ConditionDraft {
  stat: string;
  op: "at_least" | "at_most";
  value: string;
}

export interface Draft {
  id: string;
  title: string;
  locked_description: string;
  unlocked_description: string;
  locked_icon: string;
  unlocked_icon: string;
  points: string;
  order: string;
  visibility: Visibility;
  conditions: ConditionDraft[];
  requires: string;
  available_from: string;
  available_until: string;
  localizations: Record<string, Localization>;
  metadata: string;
  tags: string;
  repeatable: boolean;
  repeat_max: string;
  repeat_cooldown_secs: string;
  rewards: string;
  claim: boolean;
  min_contribution: string;
}

/** A form for a new achievement. */
export function emptyDraft(): Draft {
  return {
    id: "",
    title: "",
    locked_description: "",
    unlocked_description: "",
    locked_icon: "",
    unlocked_icon: "",
    points: "0",
    order: "0",
    visibility: "visible",
    conditions: [],
    requires: "",
    available_from: "",
    available_until: "",
    localizations: {},
    metadata: "{}",
    tags: "",
    repeatable: false,
    repeat_max: "",
    repeat_cooldown_secs: "0",
    rewards: "[]",
    claim: false,
    min_contribution: "",
  };
}

/** The form of a stored achievement. */
export function draftOf(def: AchievementDefinition): Draft {
  return {
    id: def.id,
    title: def.title,
    locked_description: def.locked_description ?? "",
    unlocked_description: def.unlocked_description ?? "",
    locked_icon: def.locked_icon ?? "",
    unlocked_icon: def.unlocked_icon ?? "",
    points: String(def.points ?? 0),
    order: String(def.order ?? 0),
    visibility: def.visibility ?? "visible",
    conditions: (def.conditions ?? []).map((c) => ({ stat: c.stat, op: c.at_most !== undefined ? "at_most" : "at_least", value: String(c.at_most ?? c.at_least ?? "") })),
    requires: (def.requires ?? []).join(", "),
    available_from: def.available_from ?? "",
    available_until: def.available_until ?? "",
    localizations: structuredClone(def.localizations ?? {}),
    metadata: JSON.stringify(def.metadata ?? {}, null, 2),
    tags: (def.tags ?? []).join(", "),
    repeatable: def.repeat !== undefined && def.repeat !== null,
    repeat_max: def.repeat?.max == null ? "" : String(def.repeat.max),
    repeat_cooldown_secs: String(def.repeat?.cooldown_secs ?? 0),
    rewards: JSON.stringify(def.rewards ?? [], null, 2),
    claim: def.claim ?? false,
    min_contribution: def.min_contribution === undefined ? "" : String(def.min_contribution),
  };
}

/** A JSON field that does not parse: the field and why, shown like a server refusal. */
export class DraftError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * The spec a draft describes. Numbers are sent as typed (the server refuses what is not one,
 * naming the field); only JSON text that does not parse is refused here.
 */
export function specOf(draft: Draft): AchievementSpec {
  const spec: AchievementSpec = { title: draft.title };
  const text = (key: "locked_description" | "unlocked_description" | "locked_icon" | "unlocked_icon" | "available_from" | "available_until") => {
    if (draft[key] !== "") spec[key] = draft[key];
  };
  text("locked_description");
  text("unlocked_description");
  text("locked_icon");
  text("unlocked_icon");
  text("available_from");
  text("available_until");
  spec.points = numberOf(draft.points);
  spec.order = numberOf(draft.order);
  spec.visibility = draft.visibility;
  // Empty lists and maps are left out, as the server stores them (absent is empty).
  if (draft.conditions.length) spec.conditions = draft.conditions.map((c): Condition => ({ stat: c.stat, [c.op]: numberOf(c.value) }));
  const requires = list(draft.requires);
  if (requires.length) spec.requires = requires;
  const tags = list(draft.tags);
  if (tags.length) spec.tags = tags;
  const localizations: Record<string, Localization> = {};
  for (const [lang, loc] of Object.entries(draft.localizations)) {
    const kept = Object.fromEntries(Object.entries(loc).filter(([, v]) => v !== "" && v !== undefined));
    if (Object.keys(kept).length) localizations[lang] = kept;
  }
  if (Object.keys(localizations).length) spec.localizations = localizations;
  const metadata = json(draft.metadata, "metadata", {}) as Record<string, unknown>;
  if (Object.keys(metadata).length) spec.metadata = metadata;
  const rewards = json(draft.rewards, "rewards", []) as Record<string, unknown>[];
  if (rewards.length) spec.rewards = rewards;
  if (draft.claim) spec.claim = true;
  if (draft.repeatable) spec.repeat = { max: draft.repeat_max.trim() === "" ? null : numberOf(draft.repeat_max), cooldown_secs: numberOf(draft.repeat_cooldown_secs || "0") };
  if (draft.min_contribution.trim() !== "") spec.min_contribution = numberOf(draft.min_contribution);
  return spec;
}

/** A number input's value: a number when it reads as one, else the text (for the server to name). */
function numberOf(text: string): number {
  const trimmed = text.trim();
  const n = Number(trimmed);
  return (trimmed !== "" && Number.isFinite(n) ? n : trimmed) as number;
}

function list(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function json(text: string, field: string, empty: unknown): unknown {
  if (text.trim() === "") return empty;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DraftError(field, `not JSON: ${(e as Error).message}`);
  }
}

/** How a player sees an achievement in a language: the texts with the default's fallbacks. */
export function playerTexts(draft: Draft, lang: string | null): { title: string; locked: string; unlocked: string } {
  const loc = lang ? (draft.localizations[lang] ?? {}) : {};
  return {
    title: loc.title || draft.title,
    locked: draft.visibility === "secret" ? "" : loc.locked_description || draft.locked_description,
    unlocked: loc.unlocked_description || draft.unlocked_description,
  };
}

/** The URL an icon field resolves to, as the server builds it for players. */
export function iconUrl(value: string): string | null {
  if (!value) return null;
  if (/^[0-9a-f]{64}$/.test(value)) return `/v1/icons/${value}`;
  return value;
}
