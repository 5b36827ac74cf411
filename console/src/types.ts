// The shapes of the admin API's JSON, as docs/reference.md and /openapi.json describe them.

export type Visibility = "visible" | "secret" | "hidden";

export interface Condition {
  stat: string;
  at_least?: number;
  at_most?: number;
}

export interface Localization {
  title?: string;
  locked_description?: string;
  unlocked_description?: string;
}

export interface Repeat {
  max?: number | null;
  cooldown_secs?: number;
}

/** What `PUT /v1/admin/achievements/{id}` takes. */
export interface AchievementSpec {
  title: string;
  locked_description?: string;
  unlocked_description?: string;
  locked_icon?: string;
  unlocked_icon?: string;
  points?: number;
  order?: number;
  visibility?: Visibility;
  conditions?: Condition[];
  requires?: string[];
  available_from?: string;
  available_until?: string;
  localizations?: Record<string, Localization>;
  metadata?: Record<string, unknown>;
  tags?: string[];
  repeat?: Repeat;
  rewards?: Record<string, unknown>[];
  claim?: boolean;
  min_contribution?: number;
}

/** A stored achievement. */
export interface AchievementDefinition extends AchievementSpec {
  id: string;
  version: number;
  archived: boolean;
}

export interface StatSpec {
  aggregation: "sum" | "max" | "min" | "latest";
  kind: "int" | "float";
  min_value?: number;
  max_value?: number;
  max_delta?: number;
  client_writable?: boolean;
  client_time?: boolean;
  scope?: "player" | "global";
  period?: "daily" | "weekly" | "monthly" | { season: string };
}

export interface StatDefinition extends StatSpec {
  name: string;
  version: number;
}

export interface SeasonDefinition {
  id: string;
  starts_at: string;
  ends_at: string;
  version: number;
}

export interface DefinitionsFile {
  stats?: Record<string, StatSpec>;
  achievements?: Record<string, AchievementSpec>;
  seasons?: Record<string, { starts_at: string; ends_at: string }>;
}

/** `GET /v1/achievements`: a published definition and its rarity. */
export interface Published {
  id: string;
  title: string;
  points: number;
  earned_percent: number;
  players?: number;
  tags?: string[];
  period?: string;
}

export interface Progress {
  stat: string;
  current: number;
  required: number;
}

/** One achievement as a player sees it. */
export interface PlayerAchievement {
  id: string;
  title: string;
  description: string;
  icon_url: string | null;
  points: number;
  visibility: Visibility;
  earned: boolean;
  earned_at: string | null;
  progress: Progress[];
  times_earned?: number;
  last_earned_at?: string;
  window?: string;
}

export interface PlayerAchievements {
  achievements: PlayerAchievement[];
  points_total: number;
}

export interface PlayerStats {
  stats: Record<string, number>;
  periods?: Record<string, Record<string, number>>;
  points_total: number;
}

export interface Refusal {
  event_id: string;
  stat?: string;
  value?: number;
  reason: string;
  code: { code: string };
  at: string;
}

export interface AdminSession {
  subject: string;
  scopes: string[];
  expires_at: number | null;
}

export interface ReplayAchievementDiff {
  id: string;
  title: string;
  gain: number;
  lose: number;
  gain_sample: string[];
  lose_sample: string[];
  points_gained: number;
  points_at_stake: number;
  earns?: number;
}

export interface ReplayReport {
  replay_id: string;
  events: number;
  definitions_changed: string[];
  players: number;
  achievements: ReplayAchievementDiff[];
  gained: number;
  lost: number;
  points_gained: number;
  applied: boolean;
  granted: number;
  elapsed_ms: number;
}

export type ReplayLine =
  | ({ type: "progress" } & { phase: string; done: number; total: number })
  | ({ type: "report" } & ReplayReport)
  | { type: "error"; detail: string };

/** `GET /v1/admin/stats/{name}/summary`. */
export interface StatSummary {
  stat: string;
  players: number;
  min?: number;
  max?: number;
  buckets: { from: number; to: number; players: number }[];
  refusals: Record<string, number>;
}

/** `GET /v1/admin/achievements/{id}/rarity`. */
export interface RarityHistory {
  id: string;
  players: number;
  earned: number;
  earned_percent: number;
  days: { day: string; earned: number; total: number }[];
}

/** One entry of `GET /v1/admin/players/{id}/timeline`. */
export type TimelineEntry =
  | { kind: "stat"; at: string | null; stat: string; previous?: number | null; value: number; period?: string }
  | { kind: "progress"; at: string | null; achievement_id: string; stat: string; current: number; required: number }
  | { kind: "unlocked"; at: string | null; achievement_id: string; occurrence: number; cause: string; unlock_id: string }
  | { kind: "refused"; at: string | null; event_id: string; stat?: string; value?: number; reason: string; code: { code: string } }
  | { kind: "reward"; unlock_id: string; achievement_id: string; claim: boolean }
  | { kind: "reward_claimed"; unlock_id: string; achievement_id: string }
  | { kind: "reset"; at: string | null };

export interface Timeline {
  player_id: string;
  entries: TimelineEntry[];
  complete: boolean;
}

/** One entry of `GET /v1/admin/audit`. */
export interface AuditEntry {
  at: string | null;
  by?: string;
  action: string;
  what: string;
  position: number;
}
