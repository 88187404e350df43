/**
 * The path of a request URL (no query), without building a URL object. Pure. Bun 1.4.5 gives a
 * request without a Host (HTTP/1.0) a URL that is the path alone.
 */
export function requestPath(url: string): string {
  const start = url.charCodeAt(0) === 47 /* / */ ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  return url.slice(start, query < 0 ? undefined : query);
}

/**
 * A request URL that `new URL()` and `new Request()` accept: the URL itself, or when Bun 1.4.5
 * could not make one (HTTP/1.0 without Host gives the path alone; a Host that is no valid
 * authority, such as `x:abc` or `x#`, the path or an unparsable URL) the same path and query on
 * `http://localhost`. For code that needs a URL object on requests a client shapes, never for
 * deciding whose origin a request is. Pure.
 */
export function absoluteUrl(url: string): string {
  if (URL.canParse(url)) return url;
  const start = url.charCodeAt(0) === 47 /* / */ ? 0 : url.indexOf("/", url.indexOf("//") + 2);
  return `http://localhost${start < 0 ? "/" : url.slice(start)}`;
}

const UPLOADS = "/api/uploads/";
const DIRECT = "direct/";
/** What stands in a log line for a capability's secret. */
const REDACTED = "<secret>";

/**
 * The path of a request URL as log lines write it: `requestPath`, with the secrets of upload URLs
 * left out. A tus upload URL (`/api/uploads/<video id>.<secret>`, src/modules/uploads/upload-ids.ts)
 * and a direct upload URL (`/api/uploads/direct/<secret>`) are capabilities: whoever reads one
 * may append to, finish or cancel that upload with no other credential, and logs are read more
 * widely than DATA_DIR. The video id stays, to follow an upload through the log. Whatever
 * follows `/api/uploads/` and a `.` or `%` (a dot percent-encoded) goes, so no spelling of a
 * secret that a router might decode gets through.
 *
 * The secret is the client's whether or not the router takes the spelling it came in: a base URL
 * with a trailing slash (`//api/uploads/...`), repeated slashes anywhere, percent-encoded letters
 * or slashes (`/%61pi/uploads/...`, `/api/uploads%2F...`), another case (`/API/Uploads/...`).
 * Such a path is logged in its plain spelling (decoded, single slashes) when it holds
 * `/api/uploads/` anywhere; Bun has already resolved `.` and `..` segments. Pure.
 */
export function loggedPath(url: string): string {
  const path = requestPath(url);
  if (path.startsWith(UPLOADS) && !ODD_SPELLING.test(path)) return redacted(path, UPLOADS.length);
  if (!ODD_SPELLING.test(path) && !UPLOADS_ANY_CASE.test(path)) return path;
  const plain = plainSpelling(path);
  const at = plain.toLowerCase().indexOf(UPLOADS);
  return at < 0 ? path : redacted(plain, at + UPLOADS.length);
}

/** What makes a path worth a second look: a percent-encoded byte, or repeated slashes. */
const ODD_SPELLING = /%|\/\//;
const UPLOADS_ANY_CASE = /\/api\/uploads\//i;

/** `path` with its secret out, `start` being where what follows `/api/uploads/` begins. */
function redacted(path: string, start: number): string {
  if (path.length === start) return path;
  const prefix = path.slice(0, start);
  if (path.slice(start, start + DIRECT.length).toLowerCase() === DIRECT) return `${prefix}${DIRECT}${REDACTED}`;
  const rest = path.slice(start);
  const dot = rest.indexOf(".");
  const encoded = rest.indexOf("%");
  const cut = dot < 0 ? encoded : encoded < 0 ? dot : Math.min(dot, encoded);
  return cut < 0 ? path : `${prefix}${rest.slice(0, cut)}.${REDACTED}`;
}

/** Percent-encoded printable ASCII decoded (a few rounds: double encoding too), repeated slashes made one. */
function plainSpelling(path: string): string {
  let plain = path;
  for (let round = 0; round < 3 && plain.includes("%"); round++) {
    const decoded = plain.replace(/%([2-7][0-9a-f])/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (decoded === plain) break;
    plain = decoded;
  }
  return plain.replace(/\/{2,}/g, "/");
}

/**
 * The raw value of query parameter `name` (undecoded, the first one), or null. Hand-written
 * because it runs for every request of a signed video: no URL object, no split, no array.
 */
export function queryParam(url: string, name: string): string | null {
  const q = url.indexOf("?");
  if (q < 0) return null;
  let hash = url.indexOf("#", q);
  if (hash < 0) hash = url.length;
  let at = q;
  while (at < hash) {
    const found = url.indexOf(name, at + 1);
    if (found < 0 || found >= hash) return null;
    const before = url.charCodeAt(found - 1);
    const after = found + name.length;
    // A whole key: after "?" or "&", followed by "=", "&", "#" or the end.
    if (before === 63 /* ? */ || before === 38 /* & */) {
      if (after >= hash || url.charCodeAt(after) === 38) return "";
      if (url.charCodeAt(after) === 61 /* = */) {
        const end = url.indexOf("&", after + 1);
        return url.slice(after + 1, end < 0 || end > hash ? hash : end);
      }
    }
    at = found;
  }
  return null;
}

/** `uri` with `token=` added to its query, before any fragment. */
export function withToken(uri: string, token: string): string {
  const hash = uri.indexOf("#");
  const path = hash < 0 ? uri : uri.slice(0, hash);
  const fragment = hash < 0 ? "" : uri.slice(hash);
  return `${path}${path.includes("?") ? "&" : "?"}token=${token}${fragment}`;
}
