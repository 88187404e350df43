/**
 * `GET /api/videos/events`: the library as Server-Sent Events, so a page sees videos added,
 * changed and removed by anyone (another tab, the API, `bun run ingest`, another process) without
 * reloading, and the download progress of URL imports.
 *
 *   event: video     data: the video's JSON (as GET /api/videos/{id}), on any change
 *   event: deleted   data: {"id"}
 *   event: progress  data: {"id", "bytes", "total"}: an import's download (total null when unknown)
 *
 * Changes made in this process (and relayed from sibling WORKERS) arrive at once through the
 * library's "invalidated" events; those made by other processes sharing the database (a CLI
 * ingest, a separate worker) through one poll of the newest videos every FEED_POLL_MS, shared by
 * every open stream.
 */
import { t } from "elysia";
import type { VideoRow } from "../../db/schema.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import type { ImportService } from "../imports/service.ts";
import { AUTH_RESPONSES } from "../../access/plugin.ts";
import { toVideoJson } from "../../schemas/video.ts";
import { EVENT_QUEUE, enqueueEvent, eventStreamResponse, type EventStreamBounds } from "../../http/event-stream.ts";

export const FEED_POLL_MS = 2000;
const PING_MS = 15_000;
/** How many of the newest videos the poll compares. */
const POLL_WINDOW = 100;

type Send = (event: string, data: unknown) => void;

export class LibraryFeed {
  private readonly listeners = new Set<Send>();
  private snapshot = new Map<string, string>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private polling = false;
  private readonly onInvalidated = (id: string) => void this.publish(id);
  private readonly onProgress = (p: { id: string; bytes: number; total: number | null }) => this.emit("progress", { id: p.id, bytes: p.bytes, total: p.total });

  constructor(
    readonly library: VideoLibrary,
    readonly imports?: ImportService,
    readonly pollMs = FEED_POLL_MS,
  ) {}

  get size(): number {
    return this.listeners.size;
  }

  subscribe(send: Send): () => void {
    if (this.listeners.size === 0) this.open();
    this.listeners.add(send);
    return () => {
      this.listeners.delete(send);
      if (this.listeners.size === 0) this.shut();
    };
  }

  private open(): void {
    this.library.events.on("invalidated", this.onInvalidated);
    this.imports?.events.on("progress", this.onProgress);
    void this.poll(true);
    this.timer = setInterval(() => void this.poll(false), this.pollMs);
  }

  private shut(): void {
    this.library.events.off("invalidated", this.onInvalidated);
    this.imports?.events.off("progress", this.onProgress);
    clearInterval(this.timer);
    this.snapshot.clear();
  }

  private emit(event: string, data: unknown): void {
    for (const send of this.listeners) send(event, data);
  }

  private stamp(row: VideoRow): string {
    // Status and updatedAt change with every write that matters to a card (HLS progress included).
    return `${row.updatedAt.getTime()} ${row.status} ${row.hlsStatus ?? ""} ${row.hlsProgress ?? ""}`;
  }

  private async publish(id: string): Promise<void> {
    try {
      const row = await this.library.get(id);
      if (!row) {
        this.snapshot.delete(id);
        this.emit("deleted", { id });
        return;
      }
      this.snapshot.set(id, this.stamp(row));
      this.emit("video", toVideoJson(row));
    } catch {
      // The database is closing: the clients reconnect.
    }
  }

  /** Compares the newest videos with the last look; the first look only records them. */
  private async poll(first: boolean): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const { items } = await this.library.list({ limit: POLL_WINDOW });
      const seen = new Set<string>();
      for (const row of items) {
        seen.add(row.id);
        const stamp = this.stamp(row);
        if (!first && this.snapshot.get(row.id) !== stamp) this.emit("video", toVideoJson(row));
        this.snapshot.set(row.id, stamp);
      }
      for (const id of [...this.snapshot.keys()]) {
        if (seen.has(id)) continue;
        this.snapshot.delete(id);
        // Out of the window because newer ones came, or gone.
        if (!first && !(await this.library.get(id))) this.emit("deleted", { id });
      }
    } catch {
      // The database is closing.
    } finally {
      this.polling = false;
    }
  }
}

/** The event stream of one client; `bounds` end it (a signed-in session's check, the server's shutdown). */
export function feedResponse(feed: LibraryFeed, request: Request, bounds: EventStreamBounds = {}): Response {
  const encoder = new TextEncoder();
  let unsubscribe = () => {};
  let ping: ReturnType<typeof setInterval> | undefined;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        unsubscribe();
        clearInterval(ping);
        try {
          controller.close();
        } catch {
          // already closed by the client
        }
      };
      const write = (text: string) => {
        if (closed) return;
        try {
          // A client that does not read: the backlog is dropped (the stream errored), and it ends.
          if (!enqueueEvent(controller, encoder.encode(text))) close();
        } catch {
          close();
        }
      };
      unsubscribe = feed.subscribe((event, data) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      ping = setInterval(() => write(": ping\n\n"), PING_MS);
      request.signal.addEventListener("abort", close, { once: true });
      write("retry: 2000\n\n: connected\n\n");
    },
    cancel() {
      unsubscribe();
      clearInterval(ping);
    },
  }, EVENT_QUEUE);
  return eventStreamResponse(stream, bounds);
}

const FeedEvents = t.String({
  description:
    "An event stream. `event: video` carries a video's JSON (as GET /api/videos/{id}) whenever it is added or changes; `event: deleted` carries `{\"id\"}`; `event: progress` carries `{\"id\", \"bytes\", \"total\"}` while a URL import downloads (`total` null when the source did not say).",
  examples: ['event: progress\ndata: {"id":"q7cN0l1dQ5m0tS9xYk3eZA","bytes":1048576,"total":10700000}\n\n'],
});

/** The route's options (OpenAPI). */
export const FEED_ROUTE_OPTIONS = {
  detail: {
    operationId: "libraryEvents",
    tags: ["videos"],
    summary: "Follow the whole library (Server-Sent Events)",
    description:
      "`text/event-stream`, for `EventSource`: every video added, changed (status, title, HLS progress) or deleted, by any client or process, and the download progress of URL imports. Changes by other processes sharing the database arrive within 2 s. A comment line every 15 s keeps proxies from closing the stream.",
    responses: {
      200: { description: "The event stream", content: { "text/event-stream": { schema: FeedEvents } } },
      ...AUTH_RESPONSES,
    },
  },
};
