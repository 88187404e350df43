/**
 * The methods a path supports, from the app's route table: for 405 Method Not Allowed and its
 * Allow header (RFC 9110 §15.5.6). Pure; the table is compiled once.
 */

export interface RouteEntry {
  method: string;
  path: string;
}

interface Compiled {
  method: string;
  pattern: RegExp;
  /** No parameter or wildcard: the path names one resource. */
  literal: boolean;
}

function compile(path: string): RegExp {
  const source = path
    .split("/")
    .map((segment) => (segment === "*" ? ".*" : segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source}$`);
}

export function methodTable(routes: readonly RouteEntry[]): (path: string) => string[] {
  const compiled: Compiled[] = routes
    .filter((r) => r.method !== "ALL")
    .map((r) => ({ method: r.method.toUpperCase(), pattern: compile(r.path), literal: !/(^|\/)[:*]/.test(r.path) }));
  return (path) => {
    const matching = compiled.filter((route) => route.pattern.test(path));
    // A path a route names literally is that resource, not one of a parameter's: /api/videos/events
    // is the feed (GET), not a video that has PATCH and DELETE.
    const literal = matching.filter((route) => route.literal);
    const methods = new Set<string>((literal.length ? literal : matching).map((route) => route.method));
    // A GET route answers HEAD too.
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  };
}

/**
 * The answer to an OPTIONS that is not a CORS preflight (the CORS layer answers those first):
 * 204 and the methods the resource supports (RFC 9110 §9.3.7). Registered as a route, it also
 * puts OPTIONS in the Allow of the app's 405s on that path.
 */
export function optionsAnswer(allow: string): () => Response {
  return () => new Response(null, { status: 204, headers: { allow } });
}
