// A stored definition back to the spec the admin routes take (what an edit sends again).

import type { AchievementDefinition, AchievementSpec } from "./types";

/** The spec of a stored achievement: the stored fields without `id`, `version` and `archived`. */
export function specOfDefinition(def: AchievementDefinition): AchievementSpec {
  const { id: _id, version: _version, archived: _archived, ...spec } = def;
  return spec;
}
