/**
 * The video library: rows in the database, files in Storage. Every write goes through here so
 * that caches (the stream catalog) hear about it.
 */
import { EventEmitter } from "node:events";
import { rm } from "node:fs/promises";
import { and, desc, eq, lt, notInArray, or, sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { boundInteger, boundLimit, boundText } from "../db/params.ts";
import { videos, type Playback, type VideoRow, type VideoStatus } from "../db/schema.ts";
import { HttpError, notFound } from "../http/errors.ts";
import { DEFAULT_CONTENT_TYPE } from "../http/content-type.ts";
import { newVideoId } from "./ids.ts";
import type { Storage } from "./storage.ts";

export interface IngestMeta {
  title?: string;
  originalFilename: string;
  /** Use a fixed id (the demo video, a direct upload's); otherwise a random one. */
  id?: string;
  /** Defaults to the library's default (DEFAULT_PLAYBACK). */
  playback?: Playback;
}

/** How a local file is ingested. */
export interface IngestOptions {
  /** A file Spool ships itself (the demo clip): the ingest limits (MAX_DURATION_S...) do not apply. */
  trusted?: boolean;
}

/** What PATCH /api/videos/:id may change. */
export interface VideoChanges {
  title?: string;
  playback?: Playback;
}

/** What ffprobe established about a video, as stored in its row. */
export type MediaFields = Pick<
  VideoRow,
  "contentType" | "container" | "duration" | "width" | "height" | "videoCodec" | "audioCodec" | "bitrate"
>;

export interface ListQuery {
  limit: number;
  cursor?: string;
  status?: VideoStatus;
}

export const unsupportedMedia = (message: string) => new HttpError(415, "unsupported_media_type", message);

export function titleFromFilename(name: string): string {
  const base = name.slice(name.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return (dot > 0 ? base.slice(0, dot) : base) || "Untitled";
}

function encodeCursor(row: Pick<VideoRow, "createdAt" | "id">): string {
  return Buffer.from(`${row.createdAt.getTime()}:${row.id}`).toString("base64url");
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const text = Buffer.from(cursor, "base64url").toString();
  const colon = text.indexOf(":");
  const ms = Number(text.slice(0, colon));
  if (colon < 1 || !Number.isSafeInteger(ms)) throw new HttpError(400, "bad_request", "cursor is not one this API returned");
  return { createdAt: new Date(ms), id: text.slice(colon + 1) };
}

/** One limit for titles, however they arrive (PATCH, multipart field, tus metadata, CLI). */
export const MAX_TITLE_LENGTH = 500;

function checkedTitle(title: string): string {
  if (title.length > MAX_TITLE_LENGTH) throw new HttpError(400, "bad_request", `title: at most ${MAX_TITLE_LENGTH} characters`);
  return title;
}

export class VideoLibrary {
  /**
   * "changed" (a video id): this process wrote the video. "invalidated" (a video id): cached
   * views of it are stale, after a write here, an HLS state change, or a write by a sibling
   * `WORKERS` process (relayed by src/cluster.ts). Caches listen to "invalidated"; work that
   * must happen once per write (queueing its HLS build) listens to "changed".
   */
  readonly events = new EventEmitter();
  private readonly removeHooks: ((id: string) => Promise<void>)[] = [];
  private ingester: ((sourcePath: string, meta: IngestMeta, options?: IngestOptions) => Promise<VideoRow>) | undefined;

  constructor(
    readonly db: Db,
    readonly storage: Storage,
    /** Playback policy of videos whose upload names none (DEFAULT_PLAYBACK). */
    readonly defaultPlayback: Playback = "public",
  ) {
    // Every open event stream (GET /api/videos/:id/events) listens here: many is normal, not a leak.
    this.events.setMaxListeners(0);
    this.events.on("changed", (id: string) => this.events.emit("invalidated", id));
  }

  private byId?: ReturnType<VideoLibrary["prepareById"]>;
  private readonly listStatements: ReturnType<VideoLibrary["prepareList"]>[] = [];

  private prepareById() {
    return this.db.select().from(videos).where(eq(videos.id, sql.placeholder("id"))).prepare();
  }

  async get(id: string): Promise<VideoRow | undefined> {
    return (this.byId ??= this.prepareById()).get({ id });
  }

  async require(id: string): Promise<VideoRow> {
    const row = await this.get(id);
    if (!row) throw notFound(`No video with id ${id}`);
    return row;
  }

  async list(query: ListQuery): Promise<{ items: VideoRow[]; nextCursor: string | null }> {
    const cursor = query.cursor ? decodeCursor(query.cursor) : undefined;
    const rows = this.listStatement(!!query.status, !!cursor).all({
      status: query.status,
      cursorAt: cursor?.createdAt.getTime(),
      cursorId: cursor?.id,
      limit: query.limit + 1,
    });
    const items = rows.slice(0, query.limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
  }

  /**
   * The four shapes of the list query (with or without a status filter, with or without a
   * cursor), each prepared once: building and preparing SQL per request cost more than running it.
   */
  private listStatement(byStatus: boolean, afterCursor: boolean) {
    const key = Number(byStatus) * 2 + Number(afterCursor);
    return (this.listStatements[key] ??= this.prepareList(byStatus, afterCursor));
  }

  private prepareList(byStatus: boolean, afterCursor: boolean) {
    return this.db
      .select()
      .from(videos)
      .where(
        and(
          byStatus ? eq(videos.status, boundText("status")) : undefined,
          afterCursor
            ? or(
                lt(videos.createdAt, boundInteger("cursorAt")),
                and(eq(videos.createdAt, boundInteger("cursorAt")), lt(videos.id, boundText("cursorId"))),
              )
            : undefined,
        ),
      )
      .orderBy(desc(videos.createdAt), desc(videos.id))
      // Bare placeholders here would make SQLite recompile the statement on every call.
      .limit(boundLimit("limit"))
      .prepare();
  }

  /**
   * Registers a new video in state `uploading`, before any byte arrives. Nothing about the
   * client's file name or type is trusted: the container is decided by ffprobe later.
   */
  async begin(meta: IngestMeta): Promise<VideoRow> {
    const now = new Date();
    const row = {
      id: meta.id ?? newVideoId(),
      // A title someone chose must fit; one made from a file name is simply cut.
      title: meta.title?.trim() ? checkedTitle(meta.title.trim()) : titleFromFilename(meta.originalFilename).slice(0, MAX_TITLE_LENGTH),
      originalFilename: meta.originalFilename,
      storagePath: "",
      contentType: DEFAULT_CONTENT_TYPE,
      status: "uploading" as const,
      playback: meta.playback ?? this.defaultPlayback,
      createdAt: now,
      updatedAt: now,
    };
    await this.db.insert(videos).values(row).run();
    this.events.emit("changed", row.id);
    return (await this.get(row.id))!;
  }

  /** Records what ffprobe found and moves the video to `processing`. */
  async markProcessing(id: string, media: MediaFields, owner: string | null = null): Promise<VideoRow | undefined> {
    await this.db
      .update(videos)
      .set({ ...media, status: "processing", processingOwner: owner, error: null, updatedAt: new Date() })
      .where(eq(videos.id, id))
      .run();
    this.events.emit("changed", id);
    return this.get(id);
  }

  /** The stored file is in place: the video becomes streamable. */
  async markReady(id: string, stored: { storagePath: string; size: number; sha256: string }): Promise<VideoRow | undefined> {
    await this.db
      .update(videos)
      .set({ ...stored, status: "ready", error: null, updatedAt: new Date() })
      .where(and(eq(videos.id, id), eq(videos.status, "processing")))
      .run();
    this.events.emit("changed", id);
    return this.get(id);
  }

  /** Processing failed: the row stays, with a readable reason; its files are removed. */
  async markFailed(id: string, message: string): Promise<VideoRow | undefined> {
    await this.db
      .update(videos)
      .set({ status: "failed", error: message, storagePath: "", size: 0, sha256: null, updatedAt: new Date() })
      .where(eq(videos.id, id))
      .run();
    await this.storage.removeVideo(id);
    this.events.emit("changed", id);
    return this.get(id);
  }

  /** Forgets a video that never completed: its row, its files and its temporary file. */
  async abandon(id: string, tempPath?: string): Promise<void> {
    if (tempPath) await rm(tempPath, { force: true });
    await this.remove(id);
  }

  /** Installed by the ingest pipeline, which owns the way from bytes to a ready video. */
  setIngester(ingester: (sourcePath: string, meta: IngestMeta, options?: IngestOptions) => Promise<VideoRow>): void {
    this.ingester = ingester;
  }

  /**
   * Adds a local file (the `ingest` CLI, the demo seed, tests) through the ingest pipeline,
   * copied, never moved. Resolves with the row once processing has finished: `ready`, or
   * `failed` with its error. Rejects with 415 for non-media, 422 for media over the ingest
   * limits and 503 without ffmpeg.
   */
  async ingestPath(sourcePath: string, meta: IngestMeta, options: IngestOptions = {}): Promise<VideoRow> {
    if (!this.ingester) throw new Error("no ingest pipeline is installed");
    return this.ingester(sourcePath, meta, options);
  }

  /** Ids of videos in a state, oldest first. */
  /** Videos being processed, with the process that runs (or ran) each job. */
  async processingOwners(): Promise<{ id: string; owner: string | null }[]> {
    return this.db
      .select({ id: videos.id, owner: videos.processingOwner })
      .from(videos)
      .where(eq(videos.status, "processing"))
      .orderBy(videos.createdAt)
      .all();
  }

  /** Takes over a video's processing job; false when it is no longer processing. */
  async claimProcessing(id: string, owner: string): Promise<boolean> {
    const rows = await this.db
      .update(videos)
      .set({ processingOwner: owner })
      .where(and(eq(videos.id, id), eq(videos.status, "processing")))
      .returning({ id: videos.id })
      .all();
    return rows.length > 0;
  }

  async idsWithStatus(status: VideoStatus): Promise<string[]> {
    const rows = await this.db.select({ id: videos.id }).from(videos).where(eq(videos.status, status)).orderBy(videos.createdAt).all();
    return rows.map((r) => r.id);
  }

  async rename(id: string, title: string): Promise<VideoRow> {
    return this.update(id, { title });
  }

  /** Changes a video's title and/or playback policy (caches hear of it at once). */
  async update(id: string, changes: VideoChanges): Promise<VideoRow> {
    if (changes.title !== undefined) checkedTitle(changes.title);
    await this.require(id);
    await this.db
      .update(videos)
      .set({ ...(changes.title !== undefined ? { title: changes.title } : {}), ...(changes.playback ? { playback: changes.playback } : {}), updatedAt: new Date() })
      .where(eq(videos.id, id))
      .run();
    this.events.emit("changed", id);
    return (await this.get(id))!;
  }

  /** Runs before a video's row and files are removed (e.g. to stop its processing job). */
  onRemove(hook: (id: string) => Promise<void>): void {
    this.removeHooks.push(hook);
  }

  async remove(id: string): Promise<boolean> {
    for (const hook of this.removeHooks) await hook(id);
    const result = await this.db.delete(videos).where(eq(videos.id, id)).returning({ id: videos.id }).all();
    await this.storage.removeVideo(id);
    this.events.emit("changed", id);
    return result.length > 0;
  }

  /**
   * Uploads cut short by a crash stay `uploading` forever; mark them failed at start-up.
   * `resumable` names uploads that can still be resumed (tus) and must be left alone.
   */
  async failInterrupted(resumable: Iterable<string> = []): Promise<number> {
    const keep = [...resumable];
    const rows = await this.db
      .update(videos)
      .set({ status: "failed", error: "The upload was interrupted by a server restart", updatedAt: new Date() })
      .where(and(eq(videos.status, "uploading"), keep.length ? notInArray(videos.id, keep) : undefined))
      .returning({ id: videos.id })
      .all();
    for (const row of rows) this.events.emit("changed", row.id);
    return rows.length;
  }

  /**
   * Deletes (rows and files, through `remove`) the videos whose time is up: `failed` ones not
   * changed since `failedBefore`, and `uploading` ones not changed since `abandonedBefore` whose
   * upload is not in `keep` (resumable uploads still in the store expire on their own).
   * Returns the ids removed.
   */
  async removeStale(options: { failedBefore: Date; abandonedBefore: Date; keep?: Iterable<string> }): Promise<string[]> {
    const keep = new Set(options.keep ?? []);
    const stale = await this.db
      .select({ id: videos.id })
      .from(videos)
      .where(
        or(
          and(eq(videos.status, "failed"), lt(videos.updatedAt, options.failedBefore)),
          and(eq(videos.status, "uploading"), lt(videos.updatedAt, options.abandonedBefore)),
        ),
      )
      .orderBy(videos.updatedAt)
      .all();
    const removed: string[] = [];
    for (const { id } of stale) {
      // Looked at again just before: it may have changed since the query (retitled, resumed).
      const row = await this.get(id);
      const before = row?.status === "failed" ? options.failedBefore : row?.status === "uploading" && !keep.has(id) ? options.abandonedBefore : undefined;
      if (!row || !before || row.updatedAt.getTime() >= before.getTime()) continue;
      if (await this.remove(id)) removed.push(id);
    }
    return removed;
  }

  absolutePath(row: VideoRow): string {
    return this.storage.absolute(row.storagePath);
  }
}
