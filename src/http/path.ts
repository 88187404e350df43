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
