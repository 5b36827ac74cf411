// Unlocks per second over the last minute, for the live screen's graph.

/** Counts of `times` (ms) per whole second, for the `seconds` seconds up to `now`, oldest first. */
export function perSecond(times: number[], now: number, seconds = 60): number[] {
  const buckets = new Array<number>(seconds).fill(0);
  const end = Math.floor(now / 1000);
  for (const t of times) {
    const age = end - Math.floor(t / 1000);
    if (age >= 0 && age < seconds) buckets[seconds - 1 - age] += 1;
  }
  return buckets;
}

/** A count and its noun, singular for one: "1 unlock", "2 unlocks", "3 stats". */
export function countOf(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
