/** An event waiting to be sent: what `POST /v1/events` takes, with its id fixed at report. */
export interface QueuedEvent {
  event_id: string;
  stat: string;
  value: unknown;
  /** When the game reported it, in milliseconds since the epoch. */
  ts: number;
  /** The player, for a game server's events. */
  player_id?: string;
}

/**
 * Where the queue of unsent events is kept, so that events reported offline or before a
 * crash are sent when the game runs again. `save` is called with the whole queue after
 * each change; `load` once, at start.
 */
export interface QueueStore {
  load(): Promise<QueuedEvent[]>;
  save(events: QueuedEvent[]): Promise<void>;
}

/** A queue kept in memory only: lost with the process. */
export class MemoryStore implements QueueStore {
  private events: QueuedEvent[] = [];
  async load(): Promise<QueuedEvent[]> {
    return [...this.events];
  }
  async save(events: QueuedEvent[]): Promise<void> {
    this.events = [...events];
  }
}

/** A queue kept in the browser's `localStorage` under `key`. */
export class LocalStorageStore implements QueueStore {
  constructor(private readonly key: string = "laurel-queue") {}
  async load(): Promise<QueuedEvent[]> {
    const text = globalThis.localStorage?.getItem(this.key);
    if (!text) return [];
    try {
      const events = JSON.parse(text);
      return Array.isArray(events) ? events : [];
    } catch {
      return [];
    }
  }
  async save(events: QueuedEvent[]): Promise<void> {
    globalThis.localStorage?.setItem(this.key, JSON.stringify(events));
  }
}
