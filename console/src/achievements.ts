// The achievements list: search, filters and drag ordering, as pure functions of the list.

import type { AchievementDefinition } from "./types";

export type Filter = "all" | "hidden" | "secret" | "archived" | "time-limited";

/** The achievements a search and a filter keep, in the list's order (`order`, then id). */
export function visibleRows(rows: AchievementDefinition[], search: string, filter: Filter): AchievementDefinition[] {
  const needle = search.trim().toLowerCase();
  return sortByOrder(rows).filter((a) => {
    if (needle && !`${a.id} ${a.title} ${(a.tags ?? []).join(" ")}`.toLowerCase().includes(needle)) return false;
    switch (filter) {
      case "all":
        return !a.archived;
      case "hidden":
        return !a.archived && a.visibility === "hidden";
      case "secret":
        return !a.archived && a.visibility === "secret";
      case "archived":
        return a.archived;
      case "time-limited":
        return !a.archived && isTimeLimited(a);
    }
  });
}

/** Whether an achievement can be earned only inside a window. */
export function isTimeLimited(a: AchievementDefinition): boolean {
  return Boolean(a.available_from || a.available_until);
}

/** By `order`, then id: how every list of the server sorts. */
export function sortByOrder<T extends { order?: number; id: string }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => (a.order ?? 0) - (b.order ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The `order` values that put `moved` where it was dropped (before `target`), changing as
 * few achievements as possible: the moved one takes an order between its new neighbours
 * when there is room, else the list is numbered again in steps of 10.
 *
 * @example reorder(rows, "b", "a") // [{ id: "b", order: -10 }]
 */
export function reorder(rows: AchievementDefinition[], moved: string, target: string): { id: string; order: number }[] {
  const list = sortByOrder(rows).filter((a) => a.id !== moved);
  const at = list.findIndex((a) => a.id === target);
  if (at < 0 || moved === target) return [];
  const before = at > 0 ? (list[at - 1].order ?? 0) : (list[at].order ?? 0) - 20;
  const after = list[at].order ?? 0;
  if (after - before >= 2) return [{ id: moved, order: Math.floor((before + after) / 2) }];
  const renumbered = [...list.slice(0, at), rows.find((a) => a.id === moved)!, ...list.slice(at)];
  return renumbered
    .map((a, i) => ({ id: a.id, order: (i + 1) * 10, was: a.order ?? 0 }))
    .filter((a) => a.order !== a.was)
    .map(({ id, order }) => ({ id, order }));
}
