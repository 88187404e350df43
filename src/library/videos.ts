/**
 * The video library: rows in the database, files in Storage. The only writer of the videos
 * table, so every change is heard: by this process's caches at once (the "changed" and
 * "invalidated" events) and, on PostgreSQL, by every other process through the database's
 * announcements (SpoolDb.announce / listen).
 */
import { EventEmitter } from "node:events";
import { rm } from "node:fs/promises";
import { and, desc, eq, inArray, lt, or, sql } from "drizzle-orm";
import { newOwnerId, ownerIsGone } from "../lib/process-identity.ts";
import type { SpoolDb } from "../db/client.ts";
import { boundLimit, boundText, boundTime, timeValue } from "../db/params.ts";
import type { HlsStatus, Playback, VideoRow, VideoStatus } from "../db/schema.ts";
import { HttpError, notFound, preconditionFailed } from "../http/errors.ts";
import { DEFAULT_CONTENT_TYPE } from "../http/content-type.ts";
import { sanitizeFilename } from "../http/content-disposition.ts";
import { isVideoId, newVideoId } from "./ids.ts";
import type { Storage } from "./storage.ts";

/** Who receives this process's uploads (`uploadOwner`): one id for the life of the process. */
const UPLOAD_OWNER = newOwnerId();

/** Whether the process an upload row names as its receiver is certainly gone (none recorded: an older row). */
function receiverGone(owner: string | null): boolean {
  return owner === null || ownerIsGone(owner, UPLOAD_OWNER);
}

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

/** C0 and C1 control characters and DEL: no title holds them (they reach pages, logs and file names). */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_CHARACTERS = new RegExp(CONTROL_CHARACTER.source, "g");

export function titleFromFilename(name: string): string {
  const base = name.slice(name.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return (dot > 0 ? base.slice(0, dot) : base).replace(CONTROL_CHARACTERS, " ").trim() || "Untitled";
}

function encodeCursor(row: Pick<VideoRow, "createdAt" | "id">): string {
  return Buffer.from(`${row.createdAt.getTime()}:${row.id}`).toString("base64url");
}

/**
 * The times a cursor may name: years 1 to 9999, which both databases store. Past them a safe
 * integer is no Date (NaN bound on SQLite: an empty page) or one PostgreSQL cannot read (+275760-...).
 */
const CURSOR_MIN_MS = Date.parse("0001-01-01T00:00:00.000Z");
const CURSOR_MAX_MS = Date.parse("9999-12-31T23:59:59.999Z");

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const text = Buffer.from(cursor, "base64url").toString();
  const colon = text.indexOf(":");
  const ms = Number(text.slice(0, colon));
  if (colon < 1 || !Number.isSafeInteger(ms) || ms < CURSOR_MIN_MS || ms > CURSOR_MAX_MS) throw new HttpError(400, "bad_request", "cursor is not one this API returned");
  return { createdAt: new Date(ms), id: text.slice(colon + 1) };
}

/** One limit for titles, however they arrive (PATCH, multipart field, tus metadata, CLI). */
export const MAX_TITLE_LENGTH = 500;
/**
 * A request schema's `maxLength` for a title: TypeBox counts UTF-16 units, so a cheap bound only
 * (two units a character, and as many again for the whitespace the trim removes).
 */
export const TITLE_SCHEMA_MAX_LENGTH = 4 * MAX_TITLE_LENGTH;

/** A title's length in characters (code points), as MAX_TITLE_LENGTH counts them. */
function titleLength(title: string): number {
  let n = 0;
  for (const _ of title) n++;
  return n;
}

/**
 * Characters are code points, not UTF-16 units: 500 emoji fit. Request schemas bound titles
 * only loosely (TITLE_SCHEMA_MAX_LENGTH units); this is the limit, on the trimmed title.
 */
export function checkedTitle(title: string): string {
  if (titleLength(title) > MAX_TITLE_LENGTH) throw new HttpError(400, "bad_request", `title: at most ${MAX_TITLE_LENGTH} characters`);
  if (CONTROL_CHARACTER.test(title)) throw new HttpError(400, "bad_request", "title: no control characters (U+0000-U+001F, U+007F-U+009F)");
  return title;
}

/** The longest original file name kept, in characters (most file systems' limit). */
export const MAX_FILENAME_LENGTH = 255;

/** Who a database is (src/library/ownership.ts): its `library` row. */
export interface LibraryIdentity {
  id: string;
  /** The database held videos when its id was made: an existing library, upgraded. */
  hadVideos: boolean;
}

export class VideoLibrary {
  /**
   * "changed" (a video id): this process wrote the video. "invalidated" (a video id, or "*" for
   * all): cached views are stale, after a write here, or a write by another process (a sibling
   * `WORKERS` process, relayed by src/cluster.ts; any process on a PostgreSQL database,
   * announced by it). Caches listen to "invalidated"; work that must happen once per write
   * (queueing its HLS build) listens to "changed".
   */
  readonly events = new EventEmitter();
  readonly db: SpoolDb["db"];
  private readonly t: SpoolDb["tables"];
  private readonly removeHooks: ((id: string) => Promise<void>)[] = [];

  constructor(
    readonly handle: SpoolDb,
    readonly storage: Storage,
    /** Playback policy of videos whose upload names none (DEFAULT_PLAYBACK). */
    readonly defaultPlayback: Playback = "public",
  ) {
    // Caches, the feeds and the event streams' watch listen here: many is normal, not a leak.
    this.events.setMaxListeners(0);
    this.db = handle.db;
    this.t = handle.tables;
    this.events.on("changed", (id: string) => this.events.emit("invalidated", id));
  }

  /** Starts hearing other processes' writes (PostgreSQL; a no-op on SQLite). */
  async listen(): Promise<void> {
    await this.handle.listen((id) => this.events.emit("invalidated", id));
  }

  /** After every write: this process hears at once, the others through the database. */
  private changed(id: string): void {
    this.events.emit("changed", id);
    // A lost announcement is covered by the listeners' reconnect, which drops every cache.
    this.handle.announce(id).catch(() => {});
  }

  private byId?: ReturnType<VideoLibrary["prepareById"]>;
  private readonly listStatements: ReturnType<VideoLibrary["prepareList"]>[] = [];

  private prepareById() {
    return this.db.select().from(this.t.videos).where(eq(this.t.videos.id, sql.placeholder("id"))).prepare();
  }

  async get(id: string): Promise<VideoRow | undefined> {
    const [row] = await (this.byId ??= this.prepareById()).execute({ id });
    return row;
  }

  /** The library's id and whether its database held videos when the id was made (src/library/ownership.ts). */
  async identity(): Promise<LibraryIdentity> {
    const [row] = await this.db.select().from(this.t.library).limit(1);
    if (!row) throw new Error("the database has no library row (its migration makes one)");
    return { id: row.id, hadVideos: row.hadVideos };
  }

  /** Whether stored objects under this id may belong to a video: a row that is not `failed`. */
  async ownsFiles(id: string): Promise<boolean> {
    const row = await this.get(id);
    return row !== undefined && row.status !== "failed";
  }

  async require(id: string): Promise<VideoRow> {
    const row = await this.get(id);
    if (!row) throw notFound(`No video with id ${id}`);
    return row;
  }

  async list(query: ListQuery): Promise<{ items: VideoRow[]; nextCursor: string | null }> {
    const cursor = query.cursor ? decodeCursor(query.cursor) : undefined;
    const rows = await this.listStatement(!!query.status, !!cursor).execute({
      status: query.status,
      cursorAt: cursor ? timeValue(this.handle.dialect, cursor.createdAt) : undefined,
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
    const { videos } = this.t;
    const at = boundTime(this.handle.dialect, "cursorAt");
    return this.db
      .select()
      .from(videos)
      .where(
        and(
          byStatus ? eq(videos.status, boundText("status")) : undefined,
          afterCursor ? or(lt(videos.createdAt, at), and(eq(videos.createdAt, at), lt(videos.id, boundText("cursorId")))) : undefined,
        ),
      )
      .orderBy(desc(videos.createdAt), desc(videos.id))
      // Bare placeholders here would make SQLite recompile the statement on every call.
      .limit(boundLimit("limit"))
      .prepare();
  }

  /**
   * Registers a new video before any byte arrives: `uploading`, or `importing` for a URL import.
   * Nothing about the client's file name or type is trusted: ffprobe decides the container later.
   */
  async begin(meta: IngestMeta, status: "uploading" | "importing" = "uploading"): Promise<VideoRow> {
    const now = new Date();
    // Whatever the client sent (a tus Upload-Metadata value can hold line breaks and run to
    // kilobytes): without controls, separators or bidi overrides, at most a file name's length.
    const originalFilename = [...sanitizeFilename(meta.originalFilename)].slice(0, MAX_FILENAME_LENGTH).join("") || "upload";
    const row = {
      id: meta.id ?? newVideoId(),
      // A title someone chose must fit; one made from a file name is simply cut.
      title: meta.title?.trim() ? checkedTitle(meta.title.trim()) : [...titleFromFilename(meta.originalFilename)].slice(0, MAX_TITLE_LENGTH).join(""),
      originalFilename,
      storagePath: "",
      contentType: DEFAULT_CONTENT_TYPE,
      status,
      playback: meta.playback ?? this.defaultPlayback,
      // This process receives the bytes: only its own restart may call the upload interrupted.
      uploadOwner: status === "uploading" ? UPLOAD_OWNER : null,
      createdAt: now,
      updatedAt: now,
    };
    await this.db.insert(this.t.videos).values(row);
    this.changed(row.id);
    return (await this.get(row.id))!;
  }

  /** Records what ffprobe found (and the received bytes' hash) and moves the video to `processing`. */
  async markProcessing(id: string, media: MediaFields, source?: { sha256?: string; size?: number }): Promise<VideoRow | undefined> {
    const { videos } = this.t;
    await this.db
      .update(videos)
      .set({ ...media, status: "processing", sourceSha256: source?.sha256 ?? null, sourceSize: source?.size ?? null, error: null, updatedAt: new Date() })
      .where(eq(videos.id, id));
    this.changed(id);
    return this.get(id);
  }

  /** The received bytes' hash, known before processing moves or remuxes them (so a resumed run keeps it). */
  async recordReceived(id: string, source: { sha256: string; size: number }): Promise<void> {
    const { videos } = this.t;
    await this.db.update(videos).set({ sourceSha256: source.sha256, sourceSize: source.size }).where(eq(videos.id, id));
  }

  /**
   * The stored file is in place: the video becomes streamable. With a bucket (STORAGE=s3) the
   * file and poster are uploaded first, so a ready row never names a missing object (a crash
   * before the update leaves the video `processing`, and its job runs again); the local copies
   * go once the row is ready. `media`: what processing found out about the media (a remux's
   * duration, when the received file named none), recorded with it.
   */
  async markReady(id: string, stored: { storagePath: string; size: number; sha256: string }, source?: { sha256: string; size: number }, media?: MediaFields): Promise<VideoRow | undefined> {
    const { videos } = this.t;
    const received = source ? { sourceSha256: source.sha256, sourceSize: source.size } : {};
    await this.storage.upload(id, stored.storagePath);
    const rows = await this.db
      .update(videos)
      .set({ ...stored, ...received, ...media, status: "ready", error: null, updatedAt: new Date() })
      .where(and(eq(videos.id, id), eq(videos.status, "processing")))
      .returning({ id: videos.id });
    if (this.storage.objects) {
      await this.storage.removeLocal(id);
      // Deleted (or failed) meanwhile: what was just uploaded belongs to nobody.
      if (rows.length === 0 && !(await this.get(id))) await this.storage.removeVideo(id);
    }
    this.changed(id);
    return this.get(id);
  }

  /**
   * Processing failed: the row stays, with a readable reason; its files are removed.
   *
   * Without `from`, files go first, so a client that sees `failed` never finds them still there
   * (a crash in between leaves a `processing` row whose job finds its bytes gone and fails it
   * again). With `from`, only a video whose status is `from` fails (a compare-and-set: a late or
   * repeated import must not fail a video that has since become ready), so the row is claimed
   * first and the files go after it; a crash in between leaves them to the retention sweep of
   * failed videos. The row is returned either way (unchanged when it was not `from`).
   */
  async markFailed(id: string, message: string, from?: VideoStatus): Promise<VideoRow | undefined> {
    const { videos } = this.t;
    const failed = { status: "failed" as const, error: message, storagePath: "", size: 0, sha256: null, updatedAt: new Date() };
    if (from !== undefined) {
      const claimed = await this.db
        .update(videos)
        .set(failed)
        .where(and(eq(videos.id, id), eq(videos.status, from)))
        .returning({ id: videos.id });
      if (claimed.length > 0) {
        await this.storage.removeVideo(id);
        this.changed(id);
      }
      return this.get(id);
    }
    await this.storage.removeVideo(id);
    await this.db.update(videos).set(failed).where(eq(videos.id, id));
    this.changed(id);
    return this.get(id);
  }

  /**
   * A failed import starts over: `failed` → `importing` (error cleared), a compare-and-set so
   * two retries (or a retry and a delete) cannot both win. The row after, or undefined when
   * the video was not failed.
   */
  async retryImport(id: string): Promise<VideoRow | undefined> {
    const { videos } = this.t;
    const rows = await this.db
      .update(videos)
      .set({ status: "importing", error: null, updatedAt: new Date() })
      .where(and(eq(videos.id, id), eq(videos.status, "failed")))
      .returning({ id: videos.id });
    if (rows.length === 0) return undefined;
    this.changed(id);
    return this.get(id);
  }

  /**
   * Sets a video's HLS state. With `from`, only when the current state is one of those
   * (and the video is ready): a compare-and-set, true when it happened.
   */
  async setHls(id: string, state: { status: HlsStatus; progress?: number; error?: string | null }, from?: readonly HlsStatus[]): Promise<boolean> {
    const { videos } = this.t;
    const rows = await this.db
      .update(videos)
      .set({ hlsStatus: state.status, hlsProgress: Math.max(0, Math.min(100, Math.round(state.progress ?? 0))), ...(state.error !== undefined ? { hlsError: state.error } : {}) })
      .where(and(eq(videos.id, id), from ? and(eq(videos.status, "ready"), inArray(videos.hlsStatus, [...from])) : undefined))
      .returning({ id: videos.id });
    if (rows.length) this.changed(id);
    return rows.length > 0;
  }

  /** HLS progress (0-100) while a build runs: written only while the state is still `processing`. */
  async setHlsProgress(id: string, percent: number): Promise<void> {
    const { videos } = this.t;
    const rows = await this.db
      .update(videos)
      .set({ hlsProgress: Math.max(0, Math.min(100, Math.round(percent))) })
      .where(and(eq(videos.id, id), eq(videos.hlsStatus, "processing")))
      .returning({ id: videos.id });
    if (rows.length) this.changed(id);
  }

  /** Ready videos in an HLS state, oldest first (for the worker's sweep). */
  async readyWithHls(statuses: readonly HlsStatus[], limit = 100): Promise<VideoRow[]> {
    const { videos } = this.t;
    return this.db
      .select()
      .from(videos)
      .where(and(eq(videos.status, "ready"), inArray(videos.hlsStatus, [...statuses])))
      .orderBy(videos.createdAt)
      .limit(limit);
  }

  /** Forgets a video that never completed: its row, its files and its temporary file. */
  async abandon(id: string, tempPath?: string): Promise<void> {
    if (tempPath) await rm(tempPath, { force: true });
    await this.remove(id);
  }

  /** Ids of videos in a state, oldest first, optionally only those unchanged since `before`. */
  async idsWithStatus(status: VideoStatus, before?: Date): Promise<string[]> {
    const { videos } = this.t;
    const rows = await this.db
      .select({ id: videos.id })
      .from(videos)
      .where(and(eq(videos.status, status), before ? lt(videos.updatedAt, before) : undefined))
      .orderBy(videos.createdAt);
    return rows.map((r) => r.id);
  }

  async rename(id: string, title: string): Promise<VideoRow> {
    return this.update(id, { title });
  }

  /** Changes a video's title and/or playback policy (caches hear of it at once). */
  /**
   * With `unchangedSince` (the `updatedAt` of the row a client's precondition was checked
   * against), a compare-and-set: a change made in between fails it with 412, not lost.
   */
  async update(id: string, changes: VideoChanges, unchangedSince?: Date): Promise<VideoRow> {
    const { videos } = this.t;
    if (changes.title !== undefined) checkedTitle(changes.title);
    await this.require(id);
    const written = await this.db
      .update(videos)
      .set({ ...(changes.title !== undefined ? { title: changes.title } : {}), ...(changes.playback ? { playback: changes.playback } : {}), updatedAt: new Date() })
      .where(and(eq(videos.id, id), unchangedSince ? eq(videos.updatedAt, unchangedSince) : undefined))
      .returning({ id: videos.id });
    if (written.length === 0 && unchangedSince && (await this.get(id))) throw preconditionFailed();
    this.changed(id);
    // Deleted between the check and the write: the same 404 as before it.
    const row = await this.get(id);
    if (!row) throw notFound(`No video with id ${id}`);
    return row;
  }

  /**
   * Runs once a video's row is deleted, before its stored files go: stops work on it (its
   * processing job) and removes bytes kept elsewhere that belonged to it (a partial upload).
   * Not before: a deletion the database refuses (it is down) must leave the video as it was,
   * its upload resumable and its job running. The row is the commit point; what a crash after
   * it leaves, the owners sweep (the uploads' expiry sweep, the orphan sweep, start-up).
   */
  onRemove(hook: (id: string) => Promise<void>): void {
    this.removeHooks.push(hook);
  }

  async remove(id: string): Promise<boolean> {
    const { videos } = this.t;
    const result = await this.db.delete(videos).where(eq(videos.id, id)).returning({ id: videos.id });
    for (const hook of this.removeHooks) await hook(id);
    await this.storage.removeVideo(id);
    this.changed(id);
    return result.length > 0;
  }

  /**
   * Uploads cut short by a crash stay `uploading` forever; mark them failed at start-up.
   * `resumable` names uploads that can still be resumed (tus) and must be left alone. Only
   * uploads whose receiving process is certainly gone are failed (it ran on this host and its pid
   * is dead; rows from before owners were recorded count as gone): another node, or another
   * process here, sharing the database may be receiving the rest right now. An upload whose
   * process died on another host is left to the retention sweep (FAILED_RETENTION_MS).
   */
  /**
   * STORAGE=s3: removes the local working directories of videos no longer received or processed
   * here: an upload this machine accepted and another machine's worker processed (its bytes were
   * shared through the bucket), a video deleted or failed meanwhile. What they held is in the
   * bucket, or gone with the video. Returns how many were removed.
   */
  async sweepLocalCopies(): Promise<number> {
    if (!this.storage.objects) return 0;
    let removed = 0;
    for (const id of await this.storage.localIds()) {
      if (!isVideoId(id)) continue;
      const row = await this.get(id);
      if (row && (row.status === "uploading" || row.status === "processing" || row.status === "importing")) continue;
      await this.storage.removeLocal(id);
      removed++;
    }
    return removed;
  }

  /**
   * STORAGE=s3: shares through the bucket the received bytes of uploads this machine accepted
   * while the bucket did not answer (IngestPipeline.accept), so that any machine's worker can
   * process them (their ingest job waits meanwhile). For a server without an ingest worker of
   * its own; one with it processes them itself. Returns the ids shared.
   */
  async shareWaitingUploads(): Promise<string[]> {
    if (!this.storage.objects) return [];
    const shared: string[] = [];
    for (const id of await this.storage.localIds()) {
      if (!isVideoId(id) || (await this.get(id))?.status !== "processing") continue;
      if (await this.storage.shareStagedIfMissing(id)) shared.push(id);
    }
    return shared;
  }

  async failInterrupted(resumable: Iterable<string> = []): Promise<number> {
    const { videos } = this.t;
    const keep = new Set(resumable);
    const candidates = await this.db.select({ id: videos.id, owner: videos.uploadOwner }).from(videos).where(eq(videos.status, "uploading"));
    const gone = candidates.filter((c) => !keep.has(c.id) && receiverGone(c.owner)).map((c) => c.id);
    if (!gone.length) return 0;
    const rows = await this.db
      .update(videos)
      .set({ status: "failed", error: "The upload was interrupted: the server process receiving it stopped", updatedAt: new Date() })
      // Still `uploading`: an upload that completed meanwhile is not failed.
      .where(and(eq(videos.status, "uploading"), inArray(videos.id, gone)))
      .returning({ id: videos.id });
    for (const row of rows) this.changed(row.id);
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
    const { videos } = this.t;
    const stale = await this.db
      .select({ id: videos.id })
      .from(videos)
      .where(
        or(
          and(eq(videos.status, "failed"), lt(videos.updatedAt, options.failedBefore)),
          and(eq(videos.status, "uploading"), lt(videos.updatedAt, options.abandonedBefore)),
        ),
      )
      .orderBy(videos.updatedAt);
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
