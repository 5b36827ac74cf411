/**
 * Laurel's client for games (browsers, Node 20+, Deno): stats reported exactly once through
 * a queue that survives going offline, achievements and stats read back (after what was
 * sent, when asked), and unlocks live. See README.md.
 */
export { Laurel, LaurelServer, Core, mergeTokens } from "./client.js";
export type {
  Options,
  TokenSource,
  FlushResult,
  ReadOptions,
  PlayerAchievement,
  PlayerAchievements,
  PlayerStats,
  Definitions,
  Unlock,
  Progress,
} from "./client.js";
export { LaurelError } from "./errors.js";
export type { FieldError } from "./errors.js";
export { MemoryStore, LocalStorageStore } from "./store.js";
export type { QueueStore, QueuedEvent } from "./store.js";
export { uuidv7 } from "./uuid.js";
export { readEvents } from "./sse.js";
export type { SseEvent } from "./sse.js";
