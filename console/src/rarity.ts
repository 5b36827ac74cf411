import type { Published } from "./types";

export type RarityKey = "id" | "title" | "earned_percent" | "points";

/** The rows sorted by a column, ties broken by id. */
export function sortRarity(rows: Published[], key: RarityKey, descending: boolean): Published[] {
  const sign = descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = a[key];
    const y = b[key];
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return sign * order || a.id.localeCompare(b.id);
  });
}
