/** The path of a request URL (no query), without building a URL object. Pure. */
export function requestPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  return url.slice(start, query < 0 ? undefined : query);
}

/** The raw value of query parameter `name` (undecoded), or null; no URL object on the hot path. Pure. */
export function queryParam(url: string, name: string): string | null {
  const q = url.indexOf("?");
  if (q < 0) return null;
  const hash = url.indexOf("#", q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key === name) return eq < 0 ? "" : pair.slice(eq + 1);
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
