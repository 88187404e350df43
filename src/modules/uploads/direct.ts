/**
 * Direct uploads (as Mux has them): a key holder asks for a one-time tus creation URL and hands
 * it to a browser, which uploads with no key. The URL's secret is stored hashed; the video id,
 * title and playback policy are fixed when it is issued, so the browser cannot choose them.
 * The first creation request consumes it atomically: a second one, or one after `expiresAt`,
 * creates nothing. A second one that repeats the first (its client never heard the 201) is
 * told about the upload the first made, while that upload lasts (tus.ts, `createdAgain`).
 *
 * `used_at` is set when a creation consumes the URL, `settled_at` once that creation made its
 * upload and will not roll it back: a repeat, in any process, knows from them whether the
 * creation is still in flight (423) or what it made (201 or, gone, 410).
 */
import { randomBytes } from "node:crypto";
import { and, eq, gt, isNull, lt, sql, type SQL } from "drizzle-orm";
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
 * How long a URL may stay used up but unsettled before the creation that used it is presumed
 * dead (a crash between the two writes): a repeat then settles the upload it finds, or gives
 * the URL back and creates. A live creation goes from one to the other through a few database
 * writes (each under DATABASE_QUERY_TIMEOUT_MS, 10 s by default) and the upload's lock (at most
 * 30 s), far less than this; a client meanwhile hears 423 and retries.
 */
export const DIRECT_CREATION_STALE_MS = 2 * 60_000;

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

  /**
   * Times of `used_at` and `settled_at`, and the stale cutoff, on one clock: on PostgreSQL the
   * database's (servers on other machines compare them), truncated to the columns'
   * milliseconds so that the value `consume` returns matches the stored one; on SQLite this
   * process's, as every process that opens the file runs on this machine.
   */
  private clock(): { now: Date | SQL; ago(ms: number): Date | SQL } {
    if (this.handle.dialect !== "postgres") {
      const now = this.now();
      return { now: new Date(now), ago: (ms) => new Date(now - ms) };
    }
    const now = sql`date_trunc('milliseconds', now())`;
    return { now, ago: (ms) => sql`(${now} - ${ms}::double precision * interval '1 millisecond')` };
  }

  /** Marks it used; exactly one caller wins, however many processes try at once. Returns the `used_at` it wrote, its claim. */
  async consume(row: DirectUploadRow): Promise<Date> {
    const now = new Date(this.now());
    const won = await this.db
      .update(this.directUploads)
      .set({ usedAt: this.clock().now, settledAt: null })
      .where(and(eq(this.directUploads.id, row.id), isNull(this.directUploads.usedAt), gt(this.directUploads.expiresAt, now)))
      .returning({ usedAt: this.directUploads.usedAt });
    if (!won[0]?.usedAt) {
      throw row.expiresAt.getTime() <= now.getTime() ? directUploadExpired() : directUploadUsed();
    }
    return won[0].usedAt;
  }

  /** Records that the creation holding claim `usedAt` made its upload; false if the URL is no longer its claim. */
  async settle(row: DirectUploadRow, usedAt: Date): Promise<boolean> {
    const settled = await this.db
      .update(this.directUploads)
      .set({ settledAt: this.clock().now })
      .where(and(eq(this.directUploads.id, row.id), eq(this.directUploads.usedAt, usedAt)))
      .returning({ id: this.directUploads.id });
    return settled.length > 0;
  }

  /**
   * Gives back a URL that a creation request used up and then failed with (nothing was
   * created): the browser's retry may use it. Only the creation holding claim `usedAt` calls
   * this, and only while it has not settled; false if the URL is no longer its claim.
   */
  async restore(row: DirectUploadRow, usedAt: Date): Promise<boolean> {
    const restored = await this.db
      .update(this.directUploads)
      .set({ usedAt: null, settledAt: null })
      .where(and(eq(this.directUploads.id, row.id), eq(this.directUploads.usedAt, usedAt), isNull(this.directUploads.settledAt)))
      .returning({ id: this.directUploads.id });
    return restored.length > 0;
  }

  /**
   * For a creation about to act on its claim (make its upload file, or undo what it made):
   * renews its unsettled claim `usedAt` (now, on the same clock) and returns the renewed one, or
   * null when the URL is no longer its claim. A takeover needs a claim older than
   * DIRECT_CREATION_STALE_MS, so none can come between this and the act (a check that only read
   * the claim left that gap to one already stale).
   */
  async fence(row: DirectUploadRow, usedAt: Date): Promise<Date | null> {
    const t = this.directUploads;
    const renewed = await this.db
      .update(t)
      .set({ usedAt: this.clock().now })
      .where(and(eq(t.id, row.id), eq(t.usedAt, usedAt), isNull(t.settledAt)))
      .returning({ usedAt: t.usedAt });
    return renewed[0]?.usedAt ?? null;
  }

  /** Whether `row` (as read) was used up more than DIRECT_CREATION_STALE_MS ago and is still unsettled: its creation is presumed dead. */
  async stale(row: DirectUploadRow): Promise<boolean> {
    if (!row.usedAt || row.settledAt) return false;
    const found = await this.db.select({ id: this.directUploads.id }).from(this.directUploads).where(this.staleClaim(row));
    return found.length > 0;
  }

  /** Gives back a stale claim that made no upload (see `stale`); of the processes that try, one wins. */
  async release(row: DirectUploadRow): Promise<boolean> {
    if (!row.usedAt) return false;
    const released = await this.db.update(this.directUploads).set({ usedAt: null, settledAt: null }).where(this.staleClaim(row)).returning({ id: this.directUploads.id });
    return released.length > 0;
  }

  private staleClaim(row: DirectUploadRow) {
    const t = this.directUploads;
    return and(eq(t.id, row.id), eq(t.usedAt, row.usedAt!), isNull(t.settledAt), lt(t.usedAt, this.clock().ago(DIRECT_CREATION_STALE_MS)));
  }

  /** Forgets URLs that expired (or were used) more than a day ago. */
  async sweep(): Promise<void> {
    await this.db.delete(this.directUploads).where(lt(this.directUploads.expiresAt, new Date(this.now() - 24 * 60 * 60 * 1000)));
  }
}
