/**
 * Playback tokens: JWTs signed HS256 with SIGNING_SECRET, `sub` = the video id, `exp` required.
 * Any JWT library can mint them (the secret's UTF-8 bytes are the HMAC key), so a customer's
 * backend needs no call to Spool; `POST /api/videos/:id/tokens` mints them too. A token signed
 * with SIGNING_SECRET_PREVIOUS is accepted too (a rotation without breaking playback); tokens
 * carry no key id (other issuers' would not either), so such a token costs a second HMAC, once.
 *
 * Verifying costs a base64 decode, a JSON parse and an HMAC, too much for every 64 KiB range a
 * player asks for. So each distinct token is verified once (by jose) and remembered until its
 * `exp`: afterwards a request costs one Map lookup and two comparisons, synchronously.
 *
 * jose (46 modules) is imported on the first mint or verification, not at start: a serving
 * process that never sees a token does not hold it (issue 15, the serving process's memory).
 */
import { hot } from "../metrics/metrics.ts";

export const DEFAULT_TOKEN_TTL_S = 60 * 60;
export const MAX_TOKEN_TTL_S = 7 * 24 * 60 * 60;
/** Longer than any token we or a reasonable issuer would make; refused before any parsing. */
const MAX_TOKEN_LENGTH = 2048;
/**
 * A compact JWS: three base64url parts, no padding (RFC 7515 §2, §7.1). Checked before jose,
 * whose decoder skips whitespace and `=`: otherwise one token could be respelled without end,
 * each spelling verified anew and cached apart, and written as is into signed playlists.
 */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Why a token does not grant playback: the `code` of the 403. */
export type TokenFailure = "token_missing" | "token_malformed" | "token_invalid" | "token_wrong_video" | "token_expired";

export const TOKEN_FAILURE_MESSAGES: Record<TokenFailure, string> = {
  token_missing: "This video needs a playback token: add ?token=<JWT> (POST /api/videos/{id}/tokens mints one)",
  token_malformed: "The playback token is not a well-formed HS256 JWT",
  token_invalid: "The playback token's signature or claims are not valid (it was not signed with this server's SIGNING_SECRET, or lacks sub/exp)",
  token_wrong_video: "The playback token was issued for another video",
  token_expired: "The playback token has expired",
};

interface Verified {
  sub: string;
  expMs: number;
}

export interface MintedToken {
  token: string;
  expiresAt: Date;
}

let jose: Promise<typeof import("jose")> | undefined;
const loadJose = () => (jose ??= import("jose"));

export class PlaybackTokens {
  private readonly key: Uint8Array;
  /** Keys that verify but never sign (SIGNING_SECRET_PREVIOUS). */
  private readonly previousKeys: Uint8Array[];
  private readonly verified = new Map<string, Verified>();

  constructor(
    /** SIGNING_SECRET, or it and the secrets before it (SIGNING_SECRET_PREVIOUS): the first signs. */
    secrets: string | readonly [string, ...string[]],
    private readonly maxCached = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    const [signing, ...previous] = typeof secrets === "string" ? [secrets] : secrets;
    this.key = new TextEncoder().encode(signing);
    this.previousKeys = previous.map((secret) => new TextEncoder().encode(secret));
  }

  async mint(videoId: string, ttlSeconds = DEFAULT_TOKEN_TTL_S): Promise<MintedToken> {
    const issuedAt = Math.floor(this.now() / 1000);
    const exp = issuedAt + ttlSeconds;
    const { SignJWT } = await loadJose();
    const token = await new SignJWT({}).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setSubject(videoId).setIssuedAt(issuedAt).setExpirationTime(exp).sign(this.key);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /**
   * null when `token` grants playback of `videoId`, else why not. Synchronous for a token seen
   * before (the hot path); a Promise the first time.
   */
  check(token: string | null, videoId: string): TokenFailure | null | Promise<TokenFailure | null> {
    if (!token) return "token_missing";
    const known = this.verified.get(token);
    if (known) {
      hot.tokenCacheHits++;
      return this.judge(known, videoId);
    }
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) return "token_malformed";
    hot.tokenVerifications++;
    return this.verify(token).then((result) => (typeof result === "string" ? result : this.judge(result, videoId)));
  }

  private judge(verified: Verified, videoId: string): TokenFailure | null {
    if (verified.expMs <= this.now()) return "token_expired";
    return verified.sub === videoId ? null : "token_wrong_video";
  }

  private async verify(token: string): Promise<Verified | TokenFailure> {
    const { jwtVerify } = await loadJose();
    const options = { algorithms: ["HS256"], requiredClaims: ["sub", "exp"], currentDate: new Date(this.now()) };
    let failure: TokenFailure = "token_invalid";
    for (const key of [this.key, ...this.previousKeys]) {
      try {
        const { payload } = await jwtVerify(token, key, options);
        const verified = { sub: payload.sub!, expMs: payload.exp! * 1000 };
        this.remember(token, verified);
        return verified;
      } catch (error) {
        failure = failureOf(error);
        // Only a signature that is not this key's may be another key's; the claims are checked
        // after the signature, so an expired token signed with this key is just expired.
        if ((error as { code?: string }).code !== "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") return failure;
      }
    }
    return failure;
  }

  private remember(token: string, verified: Verified): void {
    if (this.verified.size >= this.maxCached) {
      const now = this.now();
      for (const [t, v] of this.verified) if (v.expMs <= now) this.verified.delete(t);
      // Still full of live tokens: forget the oldest (they are verified again if they come back).
      if (this.verified.size >= this.maxCached) this.verified.delete(this.verified.keys().next().value!);
    }
    this.verified.set(token, verified);
  }
}

/** jose's error codes, mapped to ours. */
function failureOf(error: unknown): TokenFailure {
  switch ((error as { code?: string }).code) {
    case "ERR_JWT_EXPIRED":
      return "token_expired";
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return "token_invalid";
    default:
      // ERR_JWS_INVALID, ERR_JWT_INVALID and anything else that is not a parsable JWS.
      return "token_malformed";
  }
}
