/**
 * The video library: rows in the database, files in Storage. Every write goes through here so
 * that caches (the stream catalog) hear about it.
 */
import { EventEmitter } from "node:events";
import { createReadStream } from "node:fs";
import { copyFile, rm } from "node:fs/promises";
import { and, desc, eq, lt, or } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { videos, type VideoRow, type VideoStatus } from "../../db/schema.ts";
import { HttpError, notFound } from "../../http/errors.ts";
import { contentTypeFor, extensionOf, isMediaExtension } from "../../http/content-type.ts";
import { newVideoId } from "./ids.ts";
import type { Storage } from "./storage.ts";

export interface IngestMeta {
  title?: string;
  originalFilename: string;
  /** Use a fixed id (the demo video); otherwise a random one. */
  id?: string;
}

/** A file already written to a temporary path, with its digest when known. */
export interface StagedFile {
  tempPath: string;
  size: number;
  sha256: string;
}

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

/** Hex SHA-256 of a file, streamed: never the whole file in memory. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hasher = new Bun.CryptoHasher("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hasher.update(chunk as Buffer);
    size += (chunk as Buffer).byteLength;
  }
  return { sha256: hasher.digest("hex"), size };
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

export class VideoLibrary {
  /** Emits "changed" with a video id after any write, so caches can drop it. */
  readonly events = new EventEmitter();

  constructor(
    readonly db: Db,
    readonly storage: Storage,
  ) {}

  async get(id: string): Promise<VideoRow | undefined> {
    return this.db.select().from(videos).where(eq(videos.id, id)).get();
  }

  async require(id: string): Promise<VideoRow> {
    const row = await this.get(id);
    if (!row) throw notFound(`No video with id ${id}`);
    return row;
  }

  async list(query: ListQuery): Promise<{ items: VideoRow[]; nextCursor: string | null }> {
    const conditions = [];
    if (query.status) conditions.push(eq(videos.status, query.status));
    if (query.cursor) {
      const c = decodeCursor(query.cursor);
      conditions.push(or(lt(videos.createdAt, c.createdAt), and(eq(videos.createdAt, c.createdAt), lt(videos.id, c.id))));
    }
    const rows = await this.db
      .select()
      .from(videos)
      .where(and(...conditions))
      .orderBy(desc(videos.createdAt), desc(videos.id))
      .limit(query.limit + 1)
      .all();
    const items = rows.slice(0, query.limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
  }

  /** Registers a new video in state `uploading`, before any byte arrives. */
  async begin(meta: IngestMeta): Promise<VideoRow> {
    const ext = extensionOf(meta.originalFilename);
    if (!isMediaExtension(ext)) throw unsupportedMedia(`"${meta.originalFilename}" is not a video or audio file Spool can serve`);
    const now = new Date();
    const row = {
      id: meta.id ?? newVideoId(),
      title: meta.title?.trim() || titleFromFilename(meta.originalFilename),
      originalFilename: meta.originalFilename,
      storagePath: "",
      contentType: contentTypeFor(meta.originalFilename),
      status: "uploading" as const,
      createdAt: now,
      updatedAt: now,
    };
    await this.db.insert(videos).values(row).run();
    return (await this.get(row.id))!;
  }

  /** Moves a fully received file into place and marks the video ready. */
  async complete(row: VideoRow, staged: StagedFile): Promise<VideoRow> {
    const final = await this.storage.commit(staged.tempPath, row.id, extensionOf(row.originalFilename));
    await this.db
      .update(videos)
      .set({ storagePath: this.storage.relative(final), size: staged.size, sha256: staged.sha256, status: "ready", updatedAt: new Date() })
      .where(eq(videos.id, row.id))
      .run();
    this.events.emit("changed", row.id);
    return (await this.get(row.id))!;
  }

  /** Forgets a video that never completed: its row, its files and its temporary file. */
  async abandon(id: string, tempPath?: string): Promise<void> {
    if (tempPath) await rm(tempPath, { force: true });
    await this.remove(id);
  }

  /** Adds a local file (the `ingest` CLI and the demo seed): copied, never moved. */
  async ingestPath(sourcePath: string, meta: IngestMeta): Promise<VideoRow> {
    const row = await this.begin(meta);
    const tempPath = this.storage.tempPath();
    try {
      await copyFile(sourcePath, tempPath);
      const { sha256, size } = await hashFile(tempPath);
      return await this.complete(row, { tempPath, sha256, size });
    } catch (error) {
      await this.abandon(row.id, tempPath);
      throw error;
    }
  }

  async rename(id: string, title: string): Promise<VideoRow> {
    await this.require(id);
    await this.db.update(videos).set({ title, updatedAt: new Date() }).where(eq(videos.id, id)).run();
    this.events.emit("changed", id);
    return (await this.get(id))!;
  }

  async remove(id: string): Promise<boolean> {
    const result = await this.db.delete(videos).where(eq(videos.id, id)).returning({ id: videos.id }).all();
    await this.storage.removeVideo(id);
    this.events.emit("changed", id);
    return result.length > 0;
  }

  /** Uploads cut short by a crash stay `uploading` forever; mark them failed at start-up. */
  async failInterrupted(): Promise<number> {
    const rows = await this.db
      .update(videos)
      .set({ status: "failed", error: "The upload was interrupted by a server restart", updatedAt: new Date() })
      .where(eq(videos.status, "uploading"))
      .returning({ id: videos.id })
      .all();
    return rows.length;
  }

  absolutePath(row: VideoRow): string {
    return this.storage.absolute(row.storagePath);
  }
}
