/**
 * Which requests need the management credentials (the API key, or a signed-in session).
 * Pure, one table, deny by default: every path under /api/ needs the key unless it is listed
 * here as open, so a route added later is protected until someone decides otherwise.
 *
 * "open" does not mean unchecked: playback routes check the video's playback policy (a token
 * for signed videos, src/access/playback.ts), and upload URLs are capabilities (unguessable).
 * test/unit/access-policy.test.ts pins every row; test/integration/access.test.ts checks every
 * route the app registers against this table.
 */

export type Access = "open" | "key";

const ID = "[A-Za-z0-9_-]+";
const ANY = "[^/]+";

/** [methods, path pattern] pairs answered without management credentials. */
const OPEN: readonly [readonly string[], RegExp][] = [
  // Playback: the stream, HLS files, a video's JSON and its pictures (each checks the video's policy).
  [["GET", "HEAD"], new RegExp(`^/api/stream/${ANY}$`)],
  [["GET", "HEAD"], new RegExp(`^/api/hls/${ID}/${ANY}(?:/${ANY})?$`)],
  // (not /api/videos/events: the library's event feed needs the key)
  [["GET", "HEAD"], new RegExp(`^/api/videos/(?!events$)${ID}$`)],
  [["GET", "HEAD"], new RegExp(`^/api/videos/${ID}/thumbnail\\.jpg$`)],
  // Signing in and out.
  [["POST", "DELETE"], /^\/api\/session$/],
  // tus: an upload URL is its own credential, and so is a direct-upload URL (both unguessable).
  [["HEAD", "PATCH", "DELETE", "GET"], new RegExp(`^/api/uploads/(?!direct$)${ANY}$`)],
  [["POST"], new RegExp(`^/api/uploads/direct/${ANY}$`)],
];

export function accessFor(method: string, path: string): Access {
  // CORS preflights carry no credentials by design; the actual request is checked.
  if (method === "OPTIONS") return "open";
  // The router also answers `/metrics/` (and Bun folds `/metrics/.` into it): the whole subtree.
  if (path === "/metrics" || path.startsWith("/metrics/")) return "key";
  if (!path.startsWith("/api/")) return "open";
  for (const [methods, pattern] of OPEN) if (methods.includes(method) && pattern.test(path)) return "open";
  return "key";
}
