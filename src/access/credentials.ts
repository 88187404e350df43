/**
 * Reading credentials off a request. Pure: no I/O, no clock; table-tested in
 * test/unit/access-credentials.test.ts.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export const SESSION_COOKIE = "spool_session";

/** What a Bearer credential may hold (RFC 9110 §11.2 token68): an API key outside it could never be sent. */
export const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 9110 §11.1), or null. */
export function bearerToken(header: string | null): string | null {
  if (!header) return null;
  const match = BEARER.exec(header);
  return match ? match[1]! : null;
}

/** The SHA-256 of a secret, to compare against with `matchesDigest` (computed once per secret). */
export function digestOf(secret: string): Uint8Array {
  // Bun's one-shot hash: a third of node:crypto's createHash per call, and this runs per request.
  return Bun.CryptoHasher.hash("sha256", secret) as Uint8Array;
}

/**
 * Whether `given` hashes to `expected`, in time that depends on neither: comparing fixed-size
 * digests, not the strings, so not even the key's length leaks through timing.
 */
export function matchesDigest(given: string, expected: Uint8Array): boolean {
  return timingSafeEqual(digestOf(given), expected);
}


/**
 * Most values of one cookie name looked at. Each is a database lookup, so a request cannot make
 * that work as large as its header; a browser sends one per path and domain set (a sibling
 * host's tossed cookies among them), a few at most.
 */
export const MAX_COOKIE_VALUES = 8;

/**
 * The distinct values of a cookie in a Cookie header (RFC 6265 §5.4), in the order sent: the
 * browser puts longer paths first, so a cookie another host of the site planted for `/api`
 * (a sibling subdomain may set one for the parent domain) comes before Spool's own, and
 * reading only the first would lock the owner out. At most MAX_COOKIE_VALUES.
 */
export function cookieValues(header: string | null, name: string): string[] {
  const values: string[] = [];
  if (!header) return values;
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=");
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    const raw = pair.slice(eq + 1).trim();
    const value = raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1) : raw;
    if (!values.includes(value)) values.push(value);
    if (values.length === MAX_COOKIE_VALUES) break;
  }
  return values;
}

/**
 * The origin (`scheme://host[:port]`) a request was addressed to, as the browser saw it: its
 * Host (which no page can set), or with a trusted proxy (TRUST_PROXY) the `X-Forwarded-Host` it
 * names. Any client can send `X-Forwarded-Host`, so without one it would let the request name
 * the origin it is compared with. `X-Forwarded-Proto` is read either way: it only switches http
 * and https, so a forged one can only name our own host, as a TLS proxy in front of us does.
 */
export function ownOrigin(requestUrl: string, headers: Headers, trustProxy: boolean): string {
  // Bun 1.4.5 gives a request without a usable Host (HTTP/1.0 without one, `Host: x#`) its path
  // alone as URL: no origin can match it then, and it is not a 500.
  const url = URL.parse(requestUrl);
  const proto = forwardedProto(headers) ?? url?.protocol.slice(0, -1) ?? "http";
  const forwardedHost = trustProxy ? headers.get("x-forwarded-host")?.split(",")[0]?.trim() : undefined;
  const host = forwardedHost || headers.get("host") || url?.host || "";
  return `${proto}://${host}`.toLowerCase();
}

/** `X-Forwarded-Proto`'s first value, when it is http or https. */
export function forwardedProto(headers: Headers): "http" | "https" | null {
  const value = headers.get("x-forwarded-proto")?.split(",")[0]?.trim().toLowerCase();
  return value === "http" || value === "https" ? value : null;
}

/** Whether the request reached us over HTTPS (directly, or through a proxy that says so). */
export function isHttps(requestUrl: string, headers: Headers): boolean {
  return (forwardedProto(headers) ?? (requestUrl.startsWith("https:") ? "https" : "http")) === "https";
}

/**
 * Whether a state-changing request comes from one of our own pages (CSRF defence for cookie
 * sessions). Browsers send Origin on every cross-origin request and on same-origin POST, PATCH
 * and DELETE; when it is absent, Sec-Fetch-Site or Referer decides. With none of the three the
 * request is not from a modern browser page, and it is refused: a cookie is a browser credential.
 */
export function isSameOrigin(own: string, headers: Headers): boolean {
  const origin = headers.get("origin");
  if (origin !== null) return origin.toLowerCase() === own;
  const site = headers.get("sec-fetch-site");
  if (site !== null) return site === "same-origin";
  const referer = headers.get("referer");
  if (referer === null) return false;
  try {
    return new URL(referer).origin.toLowerCase() === own;
  } catch {
    return false;
  }
}

/** The client's address: the socket peer, or with a trusted proxy the last X-Forwarded-For entry. */
export function clientAddress(peer: string | undefined, headers: Headers, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = headers.get("x-forwarded-for");
    const last = forwarded?.slice(forwarded.lastIndexOf(",") + 1).trim();
    if (last) return last;
  }
  return peer ?? "unknown";
}

/** Hex SHA-256: how session and upload secrets are stored (a database copy reveals none). */
export function secretDigest(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}
