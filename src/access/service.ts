/**
 * Access control: who may manage the library (the API key, or a session signed in with it) and
 * who may play a signed video (a playback token for it, or the management credentials).
 */
import type { Playback } from "../db/schema.ts";
import type { SpoolDb } from "../db/client.ts";
import { HttpError } from "../http/errors.ts";
import { logger } from "../lib/log.ts";
import { queryParam } from "../http/path.ts";
import { SESSION_COOKIE, bearerToken, clientAddress, cookieValues, digestOf, isSameOrigin, matchesDigest, ownOrigin } from "./credentials.ts";
import { DEFAULT_FAILURE_LIMITS, WindowLimiter, type WindowLimits } from "./window-limiter.ts";
import { Sessions } from "./sessions.ts";
import { PlaybackTokens, TOKEN_FAILURE_MESSAGES, type TokenFailure } from "./tokens.ts";

const log = logger("access");

export interface AccessOptions {
  apiKey: string;
  signingSecret: string;
  /** Verifies tokens too, until they expire; signs nothing (SIGNING_SECRET_PREVIOUS). */
  previousSigningSecret?: string;
  trustProxy?: boolean;
  failureLimits?: WindowLimits;
}

/** Where a request's socket address comes from: Bun's server (null outside a real server). */
export type PeerSource = { requestIP(request: Request): { address: string } | null } | null | undefined;

/** How a management request proved itself. */
export type Principal = "key" | "session";

/** How a playback request was allowed: `token` is the token to pass on in the URLs it leads to. */
export interface PlaybackGrant {
  token: string | null;
}

const PUBLIC_GRANT: PlaybackGrant = Object.freeze({ token: null });
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export const unauthorized = (message: string, error?: "invalid_token") =>
  new HttpError(401, "unauthorized", message, { "www-authenticate": error ? `Bearer realm="spool", error="${error}"` : 'Bearer realm="spool"' });

export function tokenRefused(failure: TokenFailure): HttpError {
  return new HttpError(403, failure, TOKEN_FAILURE_MESSAGES[failure]);
}

/**
 * `?token=`, percent-decoded only when needed (JWTs are URL-safe as they are). The one reading
 * of it: a page that asks whether a URL has a token must read it as the check does.
 */
export function tokenOf(url: string): string | null {
  const raw = queryParam(url, "token");
  if (raw === null || !raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

export class AccessControl {
  readonly tokens: PlaybackTokens;
  readonly sessions: Sessions;
  private readonly failures: WindowLimiter;
  private readonly failureLimits: WindowLimits;
  private readonly keyDigest: Uint8Array;

  constructor(
    db: SpoolDb,
    private readonly options: AccessOptions,
  ) {
    this.keyDigest = digestOf(options.apiKey);
    const { signingSecret, previousSigningSecret } = options;
    this.tokens = new PlaybackTokens(previousSigningSecret ? [signingSecret, previousSigningSecret] : signingSecret);
    this.sessions = new Sessions(db, this.keyDigest);
    this.failureLimits = options.failureLimits ?? DEFAULT_FAILURE_LIMITS;
    this.failures = new WindowLimiter(this.failureLimits);
  }

  /** The origin a request was addressed to (the CSRF check of sessions), see `ownOrigin`. */
  ownOrigin(request: Request): string {
    return ownOrigin(request.url, request.headers, this.options.trustProxy ?? false);
  }

  /** The client a request counts against in the failure limit. */
  client(request: Request, server: PeerSource): string {
    return clientAddress(server?.requestIP(request)?.address, request.headers, this.options.trustProxy ?? false);
  }

  /**
   * Whether `key` is the API key (constant time), counting a wrong one against the client. The
   * client's address is looked up only when someone has failed lately, or this one fails.
   */
  checkKey(key: string, request: Request, server: PeerSource): boolean {
    if (!this.failures.empty) this.throwIfBlocked(this.failureCount(request, server));
    if (matchesDigest(key, this.keyDigest)) return true;
    this.recordFailure(this.failureCount(request, server));
    return false;
  }

  /**
   * What a wrong key counts against: the client, and apart from it that client's requests from
   * another site's pages (an Origin that is not ours). Any site can make its visitors' browsers
   * send wrong keys (CORS lets other sites call the API with a key); counted together, ten such
   * requests locked the visitor's address out of the key and of signing in on Spool's own page.
   * A guesser who sets Origin itself gets the two counts: twenty keys a minute, not ten.
   */
  private failureCount(request: Request, server: PeerSource): string {
    const client = this.client(request, server);
    const origin = request.headers.get("origin");
    return origin === null || origin.toLowerCase() === this.ownOrigin(request) ? client : `${client} from other sites`;
  }

  /**
   * Counts a wrong key against `client`; the attempt that blocks it is logged once,
   * with the address (behind TRUST_PROXY, the forwarded one): someone is guessing.
   */
  private recordFailure(client: string): void {
    if (this.failures.record(client) !== this.failureLimits.max) return;
    log.warn({ client, attempts: this.failureLimits.max, blockedForS: this.failures.blockedFor(client) }, "too many wrong API keys from one client: it is refused for the rest of the window");
  }

  private throwIfBlocked(client: string): void {
    const wait = this.failures.blockedFor(client);
    if (wait > 0) throw new HttpError(429, "too_many_attempts", `Too many failed sign-in attempts; try again in ${wait} s`, { "retry-after": String(wait) });
  }

  /**
   * The management credentials a request carries, checked: the key (Authorization: Bearer) or
   * a session cookie. null when it carries none; throws 401 for wrong ones, 429 when blocked.
   */
  async principal(request: Request, server: PeerSource): Promise<Principal | null> {
    const authorization = request.headers.get("authorization");
    if (authorization !== null) {
      const key = bearerToken(authorization);
      if (key === null) throw unauthorized("Authorization must be `Bearer <API key>`", "invalid_token");
      if (!this.checkKey(key, request, server)) throw unauthorized("The API key is not valid", "invalid_token");
      return "key";
    }
    const sessions = cookieValues(request.headers.get("cookie"), SESSION_COOKIE);
    if (sessions.length === 0) return null;
    // Neither counted nor blocked: a session is 256 random bits, which no one guesses, and a
    // stale cookie (expired, signed out, its row deleted) is what every returning browser sends.
    // Counting them let ten reloads of an old tab, or anyone behind the same address, lock the
    // owner out of the key and of signing in for a minute.
    if (await this.anyValid(sessions)) return "session";
    throw unauthorized("The session has expired or was signed out; sign in again");
  }

  /** Whether any of the session cookies sent is signed in (see `cookieValues`). */
  private async anyValid(sessions: readonly string[]): Promise<boolean> {
    for (const session of sessions) if (await this.sessions.isValid(session)) return true;
    return false;
  }

  /**
   * Whether the request carries the owner's credentials (the key, or a session); never throws:
   * for what only the owner is told more of (why a video failed). A wrong key still counts.
   */
  async isOwner(request: Request, server: PeerSource): Promise<boolean> {
    try {
      return (await this.principal(request, server)) !== null;
    } catch (error) {
      if (error instanceof HttpError) return false;
      throw error;
    }
  }

  /**
   * For an answer that outlives its request's check (an event stream): whether the session it
   * was opened with is still signed in, or null when it came with the key (which cannot change
   * under a running server) or with nothing.
   */
  sessionCheck(request: Request): (() => Promise<boolean>) | null {
    if (request.headers.get("authorization") !== null) return null;
    const sessions = cookieValues(request.headers.get("cookie"), SESSION_COOKIE);
    return sessions.length === 0 ? null : () => this.anyValid(sessions);
  }

  /**
   * For a route that needs the management credentials: passes, or throws 401 (none or wrong),
   * 403 (a session cookie on a state-changing request from a foreign page: CSRF) or 429.
   */
  async requireManagement(request: Request, server: PeerSource): Promise<Principal> {
    const principal = await this.principal(request, server);
    if (principal === null) throw unauthorized("This needs the API key: send Authorization: Bearer <key>, or sign in (POST /api/session)");
    if (principal === "session" && !SAFE_METHODS.has(request.method) && !isSameOrigin(this.ownOrigin(request), request.headers)) {
      throw new HttpError(403, "cross_origin_request", "A signed-in session may change the library only from Spool's own pages (the request's Origin is another site's)");
    }
    return principal;
  }

  /**
   * Whether a request may play video `id` with policy `playback`; throws 403 with the token's
   * failure code otherwise. Public videos cost nothing; a signed one costs a cached token check
   * (synchronous after the first request with that token).
   */
  playback(request: Request, id: string, playback: Playback, server: PeerSource): PlaybackGrant | Promise<PlaybackGrant> {
    if (playback === "public") return PUBLIC_GRANT;
    const token = tokenOf(request.url);
    if (token === null) return this.ownerGrant(request, server);
    const result = this.tokens.check(token, id);
    if (result === null) return { token };
    if (typeof result === "string") throw tokenRefused(result);
    return result.then((failure) => {
      if (failure) throw tokenRefused(failure);
      return { token };
    });
  }

  /** No token: the library's owner (key or session) may still watch; anyone else needs a token. */
  private async ownerGrant(request: Request, server: PeerSource): Promise<PlaybackGrant> {
    const principal = await this.principal(request, server);
    if (principal === null) throw tokenRefused("token_missing");
    return PUBLIC_GRANT;
  }
}
