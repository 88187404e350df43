/**
 * Direct uploads (as Mux has them): a key holder asks for a one-time tus creation URL and hands
 * it to a browser, which uploads with no key. The URL's secret is stored hashed; the video id,
 * title and playback policy are fixed when it is issued, so the browser cannot choose them.
 * The first creation request consumes it atomically: a second one, or one after `expiresAt`,
 * creates nothing. A second one that repeats the first (its client never heard the 201) is
 * told about the upload the first made, while that upload lasts (tus.ts, `createdAgain`).
 */
import { randomBytes } from "node:crypto";
import { and, eq, gt, isNull, lt } from "drizzle-orm";
import { secretDigest } from "../../access/credentials.ts";
import type { SpoolDb } from "../../db/client.ts";
import type { DirectUploadRow, Playback } from "../../db/schema.ts";
import { HttpError } from "../../http/errors.ts";
import { newVideoId } from "../../library/ids.ts";

export const DIRECT_UPLOADS_PATH = "/api/uploads/direct";
export const DEFAULT_DIRECT_UPLOAD_TTL_S = 60 * 60;
export const MAX_DIRECT_UPLOAD_TTL_S = 7 * 24 * 60 * 60;

export interface DirectUploadRequest {
  title?: string;
  playback: Playback;
  expiresIn: number;
}

export interface IssuedDirectUpload {
  uploadUrl: string;
  videoId: string;
  expiresAt: Date;
}

export const directUploadInvalid = () => new HttpError(403, "upload_url_invalid", "This is not a direct upload URL this server issued");
export const directUploadUsed = () => new HttpError(410, "upload_url_used", "This direct upload URL was already used; ask for a new one");
export const directUploadExpired = () => new HttpError(410, "upload_url_expired", "This direct upload URL has expired; ask for a new one");
/** A repeat that came while the creation it repeats had neither made its upload nor given the URL back. */
export const directUploadCreating = () =>
  new HttpError(423, "upload_creation_in_progress", "This direct upload URL's upload is being created by an earlier request; try again shortly", { "retry-after": "1" });

/**
 * How long after a URL was used up a repeat that finds neither the upload nor its video is told
 * to try again (423) rather than that the URL is used (410): the creation that used it registers
 * the video within this (one database write). Compared with the consuming process's clock.
 */
export const DIRECT_CREATION_SETTLE_MS = 2_000;

export class DirectUploads {
  constructor(
    private readonly handle: SpoolDb,
    private readonly now: () => number = Date.now,
  ) {}

  private get db() {
    return this.handle.db;
  }

  private get directUploads() {
    return this.handle.tables.directUploads;
  }

  async issue(request: DirectUploadRequest): Promise<IssuedDirectUpload> {
    const secret = randomBytes(32).toString("base64url");
    const now = this.now();
    const row = {
      id: secretDigest(secret),
      videoId: newVideoId(),
      title: request.title ?? null,
      playback: request.playback,
      createdAt: new Date(now),
      expiresAt: new Date(now + request.expiresIn * 1000),
    };
    await this.db.insert(this.directUploads).values(row);
    return { uploadUrl: `${DIRECT_UPLOADS_PATH}/${secret}`, videoId: row.videoId, expiresAt: row.expiresAt };
  }

  /** The direct upload a URL secret stands for, used or not; throws 403 when it is none this server issued. */
  async issued(secret: string): Promise<DirectUploadRow> {
    const [row] = await this.db.select().from(this.directUploads).where(eq(this.directUploads.id, secretDigest(secret)));
    if (!row) throw directUploadInvalid();
    return row;
  }

  /** Throws 410 unless the URL may still create its upload (unused, not expired). */
  checkUsable(row: DirectUploadRow): void {
    if (row.usedAt) throw directUploadUsed();
    if (row.expiresAt.getTime() <= this.now()) throw directUploadExpired();
  }

  /** Marks it used; exactly one caller wins, however many processes try at once. */
  async consume(row: DirectUploadRow): Promise<void> {
    const now = new Date(this.now());
    const won = await this.db
      .update(this.directUploads)
      .set({ usedAt: now })
      .where(and(eq(this.directUploads.id, row.id), isNull(this.directUploads.usedAt), gt(this.directUploads.expiresAt, now)))
      .returning({ id: this.directUploads.id });
    if (won.length === 0) {
      throw row.expiresAt.getTime() <= now.getTime() ? directUploadExpired() : directUploadUsed();
    }
  }

  /**
   * Gives back a URL that a creation request used up and then failed with (nothing was
   * created): the browser's retry may use it. Only the request that consumed it calls this.
   */
  async restore(row: DirectUploadRow): Promise<void> {
    await this.db.update(this.directUploads).set({ usedAt: null }).where(eq(this.directUploads.id, row.id));
  }

  /** Forgets URLs that expired (or were used) more than a day ago. */
  async sweep(): Promise<void> {
    await this.db.delete(this.directUploads).where(lt(this.directUploads.expiresAt, new Date(this.now() - 24 * 60 * 60 * 1000)));
  }
}
