/**
 * Conditional requests, RFC 9110 §13. Pure: no I/O.
 *
 * `evaluatePreconditions` runs the §13.2.2 steps in order and says whether to proceed, answer
 * 304 Not Modified or 412 Precondition Failed. `ifRangeAllows` decides whether a Range header may
 * be honoured (§13.1.5).
 */

export interface Validators {
  /** A strong entity-tag including its quotes, e.g. `"abc"`. */
  etag: string;
  /** Last-Modified as Unix seconds (HTTP-dates have one-second resolution). */
  lastModified: number;
}

/** Just the request headers this module reads; works with `Headers` and plain maps alike. */
export interface HeaderSource {
  get(name: string): string | null;
}

export type PreconditionOutcome = "proceed" | "not-modified" | "failed";

interface EntityTag {
  weak: boolean;
  opaque: string;
}

/** Parses one entity-tag (`"x"` or `W/"x"`); undefined when malformed. */
export function parseEntityTag(text: string): EntityTag | undefined {
  let weak = false;
  let rest = text;
  if (rest.startsWith("W/")) {
    weak = true;
    rest = rest.slice(2);
  }
  if (rest.length < 2 || !rest.startsWith('"') || !rest.endsWith('"')) return undefined;
  const opaque = rest.slice(1, -1);
  if (opaque.includes('"')) return undefined;
  return { weak, opaque };
}

/**
 * Splits an If-Match / If-None-Match value into tags. Commas may appear only between tags, never
 * inside one, so a split is exact. Returns "*" for the wildcard.
 */
export function parseEntityTagList(value: string): EntityTag[] | "*" {
  const trimmed = value.trim();
  if (trimmed === "*") return "*";
  const tags: EntityTag[] = [];
  for (const part of trimmed.split(",")) {
    const tag = parseEntityTag(part.trim());
    if (tag) tags.push(tag);
  }
  return tags;
}

/** Strong comparison (§8.8.3.2): both strong, same opaque-tag. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** Weak comparison: same opaque-tag, whatever the weakness. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

/**
 * Parses an HTTP-date (IMF-fixdate and the obsolete RFC 850 / asctime forms, which
 * `Date.parse` understands) into Unix seconds; undefined when invalid.
 */
export function parseHttpDate(value: string): number | undefined {
  // Date.parse accepts far more than HTTP-date (e.g. bare numbers); demand a day-name first.
  let text = value.trim();
  if (!/^[A-Za-z]{3,9},? /.test(text)) return undefined;
  // asctime carries no zone, and Date.parse would read it as local time; HTTP means GMT.
  if (!/GMT$/i.test(text)) text += " GMT";
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/** Formats Unix seconds as an IMF-fixdate. */
export function formatHttpDate(seconds: number): string {
  return new Date(seconds * 1000).toUTCString();
}

function anyMatches(list: EntityTag[] | "*", current: EntityTag, compare: typeof strongMatch): boolean {
  if (list === "*") return true; // the representation exists, or we would not be here
  return list.some((tag) => compare(tag, current));
}

/**
 * RFC 9110 §13.2.2 evaluation order, for a representation that exists.
 * `method` matters: 304 is only for GET and HEAD; other methods get 412 from If-None-Match.
 */
export function evaluatePreconditions(
  method: string,
  headers: HeaderSource,
  validators: Validators,
): PreconditionOutcome {
  const ifMatch = headers.get("if-match");
  const ifNoneMatch = headers.get("if-none-match");
  const ius = ifMatch === null ? headers.get("if-unmodified-since") : null;
  const ims = ifNoneMatch === null ? headers.get("if-modified-since") : null;
  // The common case, on the hot path: no preconditions at all.
  if (ifMatch === null && ifNoneMatch === null && ius === null && ims === null) return "proceed";
  // The next most common: a cache revalidating with exactly the tag it was given (no parsing).
  if (ifMatch === null && ius === null && (ifNoneMatch === validators.etag || ifNoneMatch === `W/${validators.etag}`)) {
    return method === "GET" || method === "HEAD" ? "not-modified" : "failed";
  }

  const current = parseEntityTag(validators.etag);
  if (!current) throw new Error(`invalid ETag ${validators.etag}`);

  // Step 1 and 2: If-Match, else If-Unmodified-Since.
  if (ifMatch !== null) {
    if (!anyMatches(parseEntityTagList(ifMatch), current, strongMatch)) return "failed";
  } else {
    const date = ius === null ? undefined : parseHttpDate(ius);
    if (date !== undefined && validators.lastModified > date) return "failed";
  }

  const safe = method === "GET" || method === "HEAD";
  // Step 3 and 4: If-None-Match, else If-Modified-Since (GET/HEAD only).
  if (ifNoneMatch !== null) {
    if (anyMatches(parseEntityTagList(ifNoneMatch), current, weakMatch)) {
      return safe ? "not-modified" : "failed";
    }
  } else if (safe) {
    const date = ims === null ? undefined : parseHttpDate(ims);
    if (date !== undefined && validators.lastModified <= date) return "not-modified";
  }
  return "proceed";
}

/**
 * §13.1.5: a Range is honoured only when If-Range is absent, or names the current strong ETag,
 * or is exactly the current Last-Modified date. Anything else means "send me the whole thing".
 */
export function ifRangeAllows(headers: HeaderSource, validators: Validators): boolean {
  const ifRange = headers.get("if-range");
  if (ifRange === null) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith("W/")) {
    const tag = parseEntityTag(value);
    const current = parseEntityTag(validators.etag);
    return !!tag && !!current && strongMatch(tag, current);
  }
  const date = parseHttpDate(value);
  return date !== undefined && date === validators.lastModified;
}
