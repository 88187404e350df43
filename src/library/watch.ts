/**
 * Watches single videos' rows for the event streams (`GET /api/videos/:id/events`): one read of
 * a watched video per change and per poll, however many clients watch it, and one listener on
 * the library's events for all of them. (Each stream used to read its row every 500 ms and
 * listen on its own: a thousand viewers of one processing video cost two thousand reads a
 * second, work a client could multiply by opening streams.)
 *
 * Changes made in this process, by `WORKERS` siblings (relayed) and, on PostgreSQL, by any
 * process (NOTIFY) arrive as "invalidated" events. On SQLite a separate worker or CLI ingest
 * writes without telling anyone, so watched rows are also polled there; PostgreSQL needs no poll
 * (a lost notification connection re-checks everything on reconnect, as a "*" event).
 */
import type { VideoRow } from "../db/schema.ts";
import type { VideoLibrary } from "./videos.ts";

export interface RowListener {
  /** The row as read now (undefined: deleted). Called after every read, changed or not. */
  row(row: VideoRow | undefined): void;
  /** The read failed (the database is closing): the stream ends and its client reconnects. */
  failed(): void;
}

interface Watched {
  readonly id: string;
  readonly listeners: Set<RowListener>;
  timer: ReturnType<typeof setInterval> | undefined;
  reading: boolean;
  again: boolean;
}

/** SQLite: how often a watched row is read for writes made by other processes. */
export const WATCH_POLL_MS = 500;

export class VideoWatch {
  private readonly watched = new Map<string, Watched>();

  constructor(
    private readonly library: VideoLibrary,
    /** 0: no polling (PostgreSQL, where every write is announced). */
    private readonly pollMs = library.handle.dialect === "postgres" ? 0 : WATCH_POLL_MS,
  ) {
    library.events.on("invalidated", (id: string) => {
      if (id === "*") for (const entry of this.watched.values()) void this.read(entry);
      else {
        const entry = this.watched.get(id);
        if (entry) void this.read(entry);
      }
    });
  }

  /** Number of videos watched (not of listeners): what the database pays for. */
  get size(): number {
    return this.watched.size;
  }

  /** Starts telling `listener` about video `id`; the returned function stops it. */
  subscribe(id: string, listener: RowListener): () => void {
    let entry = this.watched.get(id);
    if (!entry) {
      entry = { id, listeners: new Set(), timer: undefined, reading: false, again: false };
      this.watched.set(id, entry);
      const watched = entry;
      if (this.pollMs > 0) watched.timer = setInterval(() => void this.read(watched), this.pollMs);
    }
    entry.listeners.add(listener);
    const watched = entry;
    return () => {
      watched.listeners.delete(listener);
      if (watched.listeners.size > 0 || this.watched.get(id) !== watched) return;
      clearInterval(watched.timer);
      this.watched.delete(id);
    };
  }

  /** One read at a time per video; a change during a read asks for one more read after it. */
  private async read(entry: Watched): Promise<void> {
    if (entry.reading) {
      entry.again = true;
      return;
    }
    entry.reading = true;
    try {
      do {
        entry.again = false;
        const row = await this.library.get(entry.id);
        for (const listener of [...entry.listeners]) listener.row(row);
      } while (entry.again && entry.listeners.size > 0);
    } catch {
      for (const listener of [...entry.listeners]) listener.failed();
    } finally {
      entry.reading = false;
    }
  }
}
