import { LaurelError, errorOf, networkError } from "./errors.js";
import { readEvents } from "./sse.js";
import { MemoryStore, type QueueStore, type QueuedEvent } from "./store.js";
import { uuidv7 } from "./uuid.js";

/** A token, or a function that gives the current one (called again when one is refused). */
export type TokenSource = string | (() => string | Promise<string>);

/** What every client takes. */
export interface Options {
  /** The server: `https://laurel.example.com`. */
  url: string;
  /** The token, or how to get a fresh one. */
  token: TokenSource;
  /** Where unsent events are kept (default: memory; `LocalStorageStore`, `FileStore`). */
  store?: QueueStore;
  /** Events per request, at most (the server's `--max-batch`, 1,000 by default). */
  batchSize?: number;
  /** How often queued events are sent, in milliseconds. */
  flushIntervalMs?: number;
  /** The longest wait between two tries of an unanswered batch, in milliseconds. */
  maxBackoffMs?: number;
  /** Languages for titles and descriptions (`Accept-Language`); default: the platform's. */
  locale?: string;
  /** Told of every error the flusher and the live stream meet (they never throw). */
  onError?: (error: LaurelError) => void;
  /** The `fetch` to use (default: the platform's). */
  fetch?: typeof fetch;
}

/** What `flush` did. */
export interface FlushResult {
  /** Events the server took (duplicates of earlier sends included). */
  sent: number;
  /** Events still queued. */
  pending: number;
  /** Why it stopped with events still queued, when it did. */
  error?: LaurelError;
}

/** What `POST /v1/events` answers. */
interface Accepted {
  accepted: number;
  duplicates: number;
  token: string;
}

function platformLocale(): string | undefined {
  const nav = (globalThis as { navigator?: { language?: string } }).navigator;
  if (nav?.language) return nav.language;
  try {
    return Intl.DateTimeFormat().resolvedOptions().locale;
  } catch {
    return undefined;
  }
}

/**
 * Read-your-writes tokens (`partition:position` pairs, comma-separated) combined: the
 * highest position of each partition, so a read waits for every batch sent so far.
 */
export function mergeTokens(a: string | undefined, b: string): string {
  const highest = new Map<string, number>();
  for (const pair of `${a ?? ""},${b}`.split(",")) {
    const [partition, position] = pair.split(":");
    if (!partition || position === undefined || !/^\d+$/.test(position)) continue;
    highest.set(partition, Math.max(highest.get(partition) ?? 0, Number(position)));
  }
  return [...highest].map(([p, s]) => `${p}:${s}`).join(",");
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * What the player and the game-server clients share: the token, the HTTP calls, and the
 * queue with its flusher. Events keep the id they got when reported, through every retry,
 * so the server counts each once however often it is sent.
 */
export class Core {
  protected readonly url: string;
  protected readonly fetchImpl: typeof fetch;
  protected readonly locale?: string;
  private readonly tokenSource: TokenSource;
  private token?: string;
  private readonly store: QueueStore;
  private queue: QueuedEvent[] = [];
  private readonly loaded: Promise<void>;
  private batchSize: number;
  protected readonly maxBackoffMs: number;
  private readonly onError: (error: LaurelError) => void;
  private sending?: Promise<FlushResult>;
  private saving: Promise<void> = Promise.resolve();
  private retryAt = 0;
  private failures = 0;
  private readonly timer?: ReturnType<typeof setInterval>;
  /** The read-your-writes token of the last batch the server took. */
  protected lastToken?: string;
  protected closed = false;
  protected readonly stop = new AbortController();

  constructor(options: Options) {
    this.url = options.url.replace(/\/+$/, "");
    this.tokenSource = options.token;
    this.store = options.store ?? new MemoryStore();
    this.batchSize = Math.max(1, options.batchSize ?? 100);
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.locale = options.locale ?? platformLocale();
    this.onError = options.onError ?? (() => {});
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.loaded = this.store.load().then(
      (stored) => {
        // Reported before the store answered: after what it held.
        const known = new Set(stored.map((e) => e.event_id));
        this.queue = [...stored, ...this.queue.filter((e) => !known.has(e.event_id))];
      },
      (e) => this.report_error(networkError(e)),
    );
    const interval = options.flushIntervalMs ?? 1000;
    if (interval > 0) {
      this.timer = setInterval(() => void this.flushDue(), interval);
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /** Resolves once every event reported so far is in the store. */
  persisted(): Promise<void> {
    return this.saving;
  }

  /** Events waiting to be sent. */
  get pending(): number {
    return this.queue.length;
  }

  /** Stops the flusher and the live stream; what is queued stays in the store. */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.stop.abort();
  }

  /**
   * Sends what is queued now, in batches, and resolves when the queue is empty or a batch
   * could not go (then `error` says why and the events wait for the next try). Never
   * rejects.
   */
  async flush(): Promise<FlushResult> {
    await this.loaded;
    if (this.sending) await this.sending;
    this.retryAt = 0;
    return this.send();
  }

  protected enqueue(event: Omit<QueuedEvent, "event_id" | "ts">, at: Date = new Date()): string {
    const queued: QueuedEvent = { event_id: uuidv7(at.getTime()), ts: at.getTime(), ...event };
    this.queue.push(queued);
    this.saving = this.saving.then(() => this.loaded).then(() => this.save());
    if (this.queue.length >= this.batchSize) void this.flushDue();
    return queued.event_id;
  }

  protected report_error(error: LaurelError): void {
    try {
      this.onError(error);
    } catch {
      // The game's handler failing must not stop the flusher.
    }
  }

  private async save(): Promise<void> {
    try {
      await this.store.save(this.queue);
    } catch (e) {
      this.report_error(networkError(e));
    }
  }

  private async flushDue(): Promise<void> {
    if (this.closed || this.sending || Date.now() < this.retryAt) return;
    await this.loaded;
    if (this.queue.length > 0) await this.send();
  }

  private send(): Promise<FlushResult> {
    if (!this.sending) {
      this.sending = this.sendAll().finally(() => {
        this.sending = undefined;
      });
    }
    return this.sending;
  }

  private async sendAll(): Promise<FlushResult> {
    let sent = 0;
    while (this.queue.length > 0 && !this.closed) {
      const batch = this.queue.slice(0, this.batchSize);
      const outcome = await this.sendBatch(batch);
      if (outcome instanceof LaurelError) {
        return { sent, pending: this.queue.length, error: outcome };
      }
      sent += outcome;
    }
    return { sent, pending: this.queue.length };
  }

  /** Sends one batch: the number of events the server took, or why it must wait. */
  private async sendBatch(batch: QueuedEvent[]): Promise<number | LaurelError> {
    let answer: Accepted;
    try {
      answer = await this.call<Accepted>("POST", "/v1/events", { events: batch });
    } catch (e) {
      const error = e as LaurelError;
      if (error.status === 413 && batch.length > 1) {
        this.batchSize = Math.max(1, Math.floor(batch.length / 2));
        return 0;
      }
      if (error.retryable || error.status === 401) {
        // The same events, with the same ids, later.
        this.failures += 1;
        const backoff = Math.min(this.maxBackoffMs, 250 * 2 ** Math.min(this.failures, 16));
        const wait = error.retryAfter !== undefined ? error.retryAfter * 1000 : backoff * (0.5 + Math.random() / 2);
        this.retryAt = Date.now() + wait;
        this.report_error(error);
        return error;
      }
      // Refused for what the events say: those the problem names go (the game is told),
      // the others are sent again; a problem naming none refuses the batch.
      const named = new Set<number>();
      for (const field of error.errors) {
        if (typeof field.index === "number") named.add(field.index);
      }
      const dropped = named.size > 0 ? batch.filter((_, i) => named.has(i)) : batch;
      const gone = new Set(dropped.map((e) => e.event_id));
      this.queue = this.queue.filter((e) => !gone.has(e.event_id));
      await this.save();
      this.report_error(error);
      return 0;
    }
    this.failures = 0;
    this.lastToken = mergeTokens(this.lastToken, answer.token);
    const done = new Set(batch.map((e) => e.event_id));
    this.queue = this.queue.filter((e) => !done.has(e.event_id));
    await this.save();
    return batch.length;
  }

  /** The current token (asked of the source the first time and after a refusal). */
  protected async currentToken(fresh = false): Promise<string> {
    if (typeof this.tokenSource === "string") return this.tokenSource;
    if (fresh || this.token === undefined) this.token = await this.tokenSource();
    return this.token;
  }

  /** The headers of a call, with the current token. */
  protected async headers(fresh = false, more: Record<string, string> = {}): Promise<Record<string, string>> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.currentToken(fresh)}`, ...more };
    if (this.locale) headers["accept-language"] = this.locale;
    return headers;
  }

  /**
   * A JSON call; a refused token is asked for again once. Rejects with a `LaurelError`.
   */
  protected async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        const extra: Record<string, string> = body === undefined ? {} : { "content-type": "application/json" };
        response = await this.fetchImpl(`${this.url}${path}`, {
          method,
          headers: await this.headers(attempt > 0, extra),
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(30_000)]),
        });
      } catch (e) {
        throw networkError(e);
      }
      if (response.status === 401 && attempt === 0 && typeof this.tokenSource !== "string") {
        await response.body?.cancel();
        continue;
      }
      if (!response.ok) throw await errorOf(response);
      return (await response.json()) as T;
    }
  }

  /** `?wait_for=` the last flush's token, when asked and there is one. */
  protected async waited(path: string, options?: ReadOptions): Promise<string> {
    const params = new URLSearchParams();
    if (options?.waitForFlush) {
      await this.flush();
      if (this.lastToken) params.set("wait_for", this.lastToken);
    }
    if (options?.tag) params.set("tag", options.tag);
    const query = params.toString();
    return query ? `${path}?${query}` : path;
  }
}

/** How a read is made. */
export interface ReadOptions {
  /** Send what is queued first, and answer only once the server reflects it. */
  waitForFlush?: boolean;
  /** Only the achievements with this tag. */
  tag?: string;
}

/** An achievement as a player sees it. */
export interface PlayerAchievement {
  id: string;
  title: string;
  description: string;
  icon_url: string | null;
  points: number;
  earned: boolean;
  earned_at?: string | null;
  times_earned?: number;
  progress?: { stat: string; current: number; required: number }[];
  [more: string]: unknown;
}

/** A player's achievements. */
export interface PlayerAchievements {
  achievements: PlayerAchievement[];
  points_total: number;
  wait_timed_out?: boolean;
}

/** A player's stats. */
export interface PlayerStats {
  stats: Record<string, unknown>;
  points_total: number;
  [more: string]: unknown;
}

/** The published definitions, with how many players earned each. */
export interface Definitions {
  achievements: ({ id: string; title: string; earned_percent: number } & Record<string, unknown>)[];
  players: number;
}

/** An unlock, live. */
export interface Unlock {
  unlock_id: string;
  replay: boolean;
  achievement: PlayerAchievement;
}

/** Progress toward an achievement, live (at each quarter of the way). */
export interface Progress {
  achievement_id: string;
  condition: number;
  stat: string;
  current: number;
  required: number;
}

/**
 * A game's client for one player: `report` stats, read achievements, stats and
 * definitions, and hear unlocks and progress live.
 */
export class Laurel extends Core {
  private readonly unlockListeners = new Set<(unlock: Unlock) => void>();
  private readonly progressListeners = new Set<(progress: Progress) => void>();
  private readonly laggedListeners = new Set<() => void>();
  private streaming?: Promise<void>;
  private streamStop?: AbortController;
  private lastEventId?: string;
  /** Unlocks already handed to the game (by id), so none is told twice. */
  private readonly told = new Set<string>();

  /** Queues `value` for `stat`, with a fresh event id and the time now; returns the id. */
  report(stat: string, value: unknown): string {
    return this.enqueue({ stat, value });
  }

  /** The player's achievements. */
  async achievements(options?: ReadOptions): Promise<PlayerAchievements> {
    return this.call("GET", await this.waited("/v1/players/me/achievements", options));
  }

  /** The player's stats. */
  async stats(options?: ReadOptions): Promise<PlayerStats> {
    return this.call("GET", await this.waited("/v1/players/me/stats", options));
  }

  /** The published achievements, with `earned_percent`. */
  async definitions(options?: Pick<ReadOptions, "tag">): Promise<Definitions> {
    return this.call("GET", await this.waited("/v1/achievements", options));
  }

  /** Calls `listener` with each unlock, live; returns how to stop. */
  onUnlock(listener: (unlock: Unlock) => void): () => void {
    return this.listen(this.unlockListeners, listener);
  }

  /** Calls `listener` with progress, live; returns how to stop. */
  onProgress(listener: (progress: Progress) => void): () => void {
    return this.listen(this.progressListeners, listener);
  }

  /**
   * Calls `listener` when the stream could not say everything that happened while it was
   * away (the server fell behind, or the gap was too long): read `achievements()` again.
   */
  onLagged(listener: () => void): () => void {
    return this.listen(this.laggedListeners, listener);
  }

  private listen<T>(set: Set<T>, listener: T): () => void {
    set.add(listener);
    this.ensureStream();
    return () => {
      set.delete(listener);
      if (this.unlockListeners.size + this.progressListeners.size + this.laggedListeners.size === 0) {
        this.streamStop?.abort();
      }
    };
  }

  private ensureStream(): void {
    if (this.streaming || this.closed) return;
    const stop = new AbortController();
    this.streamStop = stop;
    this.streaming = this.stream(AbortSignal.any([stop.signal, this.stop.signal])).finally(() => {
      this.streaming = undefined;
    });
  }

  /** The live stream, reconnected with backoff until stopped, resuming after the last unlock. */
  private async stream(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let fresh = false;
    while (!signal.aborted) {
      let wait = 0;
      try {
        const headers = await this.headers(fresh, { accept: "text/event-stream" });
        fresh = false;
        if (this.lastEventId) headers["last-event-id"] = this.lastEventId;
        const response = await this.fetchImpl(`${this.url}/v1/players/me/notifications`, { headers, signal });
        if (response.status === 401) {
          await response.body?.cancel();
          fresh = true;
          failures += 1;
          if (failures > 1) wait = Math.min(this.maxBackoff(), 500 * 2 ** failures);
          this.report_error(await errorOf(response));
        } else if (!response.ok || !response.body) {
          const error = await errorOf(response);
          this.report_error(error);
          failures += 1;
          wait = error.retryAfter !== undefined ? error.retryAfter * 1000 : Math.min(this.maxBackoff(), 500 * 2 ** failures);
        } else {
          for await (const event of readEvents(response.body)) {
            if (event.event === "ready") failures = 0;
            else if (event.event === "expired") fresh = true;
            else this.dispatch(event.event, event.data, event.id);
          }
          // The server ended it (shutdown, or the token expired): again at once.
          if (!fresh) {
            failures += 1;
            wait = Math.min(this.maxBackoff(), 250 * 2 ** failures);
          }
        }
      } catch (e) {
        if (signal.aborted) return;
        this.report_error(networkError(e));
        failures += 1;
        wait = Math.min(this.maxBackoff(), 500 * 2 ** failures) * (0.5 + Math.random() / 2);
      }
      if (wait > 0) await sleep(wait, signal);
    }
  }

  private maxBackoff(): number {
    return this.maxBackoffMs;
  }

  private dispatch(event: string, data: string, id?: string): void {
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      return;
    }
    if (event === "unlocked") {
      const unlock = value as Unlock;
      if (id) this.lastEventId = id;
      if (this.told.has(unlock.unlock_id)) return;
      this.told.add(unlock.unlock_id);
      if (this.told.size > 10_000) this.told.delete(this.told.values().next().value as string);
      for (const listener of this.unlockListeners) this.safely(() => listener(unlock));
    } else if (event === "progress") {
      for (const listener of this.progressListeners) this.safely(() => listener(value as Progress));
    } else if (event === "lagged") {
      for (const listener of this.laggedListeners) this.safely(() => listener());
    }
  }

  private safely(call: () => void): void {
    try {
      call();
    } catch {
      // A listener's failure is the game's; the stream goes on.
    }
  }
}

/**
 * A game server's client: events for any player (a `laurel:server` token), reads of a
 * player's achievements and stats, and grants (these need a `laurel:admin` token).
 */
export class LaurelServer extends Core {
  /** Queues `value` for `player`'s `stat`; returns the event id. */
  report(player: string, stat: string, value: unknown): string {
    return this.enqueue({ player_id: player, stat, value });
  }

  /** A player's achievements. */
  async achievements(player: string, options?: ReadOptions): Promise<PlayerAchievements> {
    return this.call("GET", await this.waited(`/v1/players/${encodeURIComponent(player)}/achievements`, options));
  }

  /** A player's stats. */
  async stats(player: string, options?: ReadOptions): Promise<PlayerStats> {
    return this.call("GET", await this.waited(`/v1/players/${encodeURIComponent(player)}/stats`, options));
  }

  /** The published achievements, with `earned_percent`. */
  async definitions(options?: Pick<ReadOptions, "tag">): Promise<Definitions> {
    return this.call("GET", await this.waited("/v1/achievements", options));
  }

  /** Grants `achievement` to `player` (through the log); resolves with the read token. */
  async grant(player: string, achievement: string): Promise<string> {
    const answer = await this.call<{ token: string }>(
      "POST",
      `/v1/admin/players/${encodeURIComponent(player)}/grants`,
      { achievement_id: achievement },
    );
    this.lastToken = mergeTokens(this.lastToken, answer.token);
    return answer.token;
  }
}
