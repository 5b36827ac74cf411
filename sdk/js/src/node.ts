/**
 * Node's queue store: a JSON file, replaced whole on each save (written aside, then renamed
 * over it), so a crash leaves the old queue or the new one, never half of one.
 */
import { readFile, rename, writeFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { QueueStore, QueuedEvent } from "./store.js";

export class FileStore implements QueueStore {
  private writing: Promise<void> = Promise.resolve();
  private counter = 0;

  constructor(private readonly path: string) {}

  async load(): Promise<QueuedEvent[]> {
    try {
      const events = JSON.parse(await readFile(this.path, "utf8"));
      return Array.isArray(events) ? events : [];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  }

  save(events: QueuedEvent[]): Promise<void> {
    const text = JSON.stringify(events);
    // Saves land in order: a later queue never loses to an earlier one.
    this.writing = this.writing.then(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      const aside = `${this.path}.${process.pid}.${this.counter++}.tmp`;
      await writeFile(aside, text);
      await rename(aside, this.path);
    });
    return this.writing;
  }
}
