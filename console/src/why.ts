// "Why did this not unlock?": what still stands between a player and an achievement they
// have not earned, from its definition, the player's stats, what they earned and what the
// engine refused of theirs.

import type { AchievementDefinition, Refusal } from "./types";

/** The reasons `def` is not earned yet, in the order a designer checks them. */
export function whyNot(def: AchievementDefinition, stats: Record<string, number>, earned: Set<string>, refusals: Refusal[], now: number): string[] {
  const out: string[] = [];
  if (def.archived) out.push("it is archived: nobody can earn it");
  if (def.available_from && Date.parse(def.available_from) > now) out.push(`it opens at ${def.available_from}`);
  if (def.available_until && Date.parse(def.available_until) <= now) out.push(`it closed at ${def.available_until}`);
  for (const id of def.requires ?? []) if (!earned.has(id)) out.push(`it requires ${id}, not earned yet`);
  for (const c of def.conditions ?? []) {
    const value = stats[c.stat];
    if (c.at_least !== undefined && (value ?? 0) < c.at_least) out.push(`${c.stat} is ${value ?? 0}, short of ${c.at_least}`);
    if (c.at_most !== undefined && value === undefined) out.push(`${c.stat} was never reported (needs at most ${c.at_most})`);
    else if (c.at_most !== undefined && value > c.at_most) out.push(`${c.stat} is ${value}, above ${c.at_most}`);
    for (const r of refusals.filter((r) => r.stat === c.stat)) out.push(`an event of ${c.stat} (${r.value ?? "?"}) was refused: ${r.reason}`);
  }
  if ((def.conditions ?? []).length === 0 && out.length === 0) out.push("it has no conditions: only a grant earns it");
  return out;
}
