/**
 * Browser sessions: `POST /api/session` with the key creates one, the `spool_session` cookie
 * carries its secret, `DELETE /api/session` ends it. Kept in the database, so a session works
 * on every process and server sharing it, and signing out ends it everywhere at once.
 */
import { createHmac, randomBytes } from "node:crypto";
import { and, eq, gt, lte } from "drizzle-orm";
import type { SpoolDb } from "../db/client.ts";

/** A session lasts a week from sign-in (the cookie's Max-Age says the same). */
export const SESSION_MAX_AGE_S = 7 * 24 * 60 * 60;
/**
 * `POST /api/session`, the one JSON route open to anyone: `{"key": "<at most 512 characters>"}`.
 * A megabyte there cost the server ~170 ms of CPU per request to parse and refuse, and 120 of
 * them a minute per address (MUTATION_RATE_LIMIT) stalled streaming on the same core.
 */
export const SIGN_IN_BODY_LIMIT = 4 * 1024;

export class Sessions {
  /**
   * `keyDigest`: the API key's SHA-256. A session's row is named by an HMAC of its secret keyed
   * with it, so a session stands for the key it was opened with: rotating API_KEY ends every
   * session on every server at once (no row matches any more), as a rotated key must. A copy
   * of the database still reveals no cookie.
   */
  constructor(
    private readonly handle: SpoolDb,
    private readonly keyDigest: Uint8Array,
    private readonly now: () => number = Date.now,
  ) {}

  /** The row id of a session secret (hex). */
  private idOf(secret: string): string {
    return createHmac("sha256", this.keyDigest).update(secret).digest("hex");
  }

  private get db() {
    return this.handle.db;
  }

  private get sessions() {
    return this.handle.tables.sessions;
  }

  /** A new session; returns the cookie value (only its hash is stored). */
  async create(): Promise<string> {
    const secret = randomBytes(32).toString("base64url");
    const now = this.now();
    // Expired sessions go as new ones come: the table holds only live ones and a few stale.
    await this.db.delete(this.sessions).where(lte(this.sessions.expiresAt, new Date(now)));
    await this.db.insert(this.sessions).values({ id: this.idOf(secret), createdAt: new Date(now), expiresAt: new Date(now + SESSION_MAX_AGE_S * 1000) });
    return secret;
  }

  async isValid(secret: string): Promise<boolean> {
    if (secret.length === 0 || secret.length > 100) return false;
    const rows = await this.db
      .select({ id: this.sessions.id })
      .from(this.sessions)
      .where(and(eq(this.sessions.id, this.idOf(secret)), gt(this.sessions.expiresAt, new Date(this.now()))));
    return rows.length > 0;
  }

  async remove(secret: string): Promise<void> {
    await this.db.delete(this.sessions).where(eq(this.sessions.id, this.idOf(secret)));
  }
}
