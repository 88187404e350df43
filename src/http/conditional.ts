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
 * Splits an If-Match / If-None-Match value into tags at its commas; malformed members are
 * dropped. (RFC 9110 lets an opaque-tag hold a comma, but Spool's tags never do, so such a tag
 * could not match either way.) Returns "*" for the wildcard.
 */
export function parseEntityTagList(value: string): EntityTag[] | "*" {
  const trimmed = trimOws(value);
  if (trimmed === "*") return "*";
  const tags: EntityTag[] = [];
  for (const part of trimmed.split(",")) {
    const tag = parseEntityTag(trimOws(part));
    if (tag) tags.push(tag);
  }
  return tags;
}

/**
 * Strips optional whitespace, which in HTTP is spaces and tabs only (RFC 9110 §5.6.3):
 * String.prototype.trim would also take a no-break space or a vertical tab for one, and read
 * `\u00a0"tag"` as the tag.
 */
function trimOws(text: string): string {
  let from = 0;
  let to = text.length;
  while (from < to && (text.charCodeAt(from) === 32 || text.charCodeAt(from) === 9)) from++;
  while (to > from && (text.charCodeAt(to - 1) === 32 || text.charCodeAt(to - 1) === 9)) to--;
  return from === 0 && to === text.length ? text : text.slice(from, to);
}

/** Strong comparison (§8.8.3.2): both strong, same opaque-tag. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** Weak comparison: same opaque-tag, whatever the weakness. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

const MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec";
const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const TIME = "(\\d\\d):(\\d\\d):(\\d\\d)";
/** `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d\\d) ${MONTH} (\\d{4}) ${TIME} GMT$`);
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete) */
const RFC850_DATE = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d\\d)-${MONTH}-(\\d\\d) ${TIME} GMT$`);
/** `Sun Nov  6 08:49:37 1994` (obsolete) */
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} (\\d\\d| \\d) ${TIME} (\\d{4})$`);

/** Days from 1970-01-01 to a proleptic Gregorian date (month 1-12); Howard Hinnant's days_from_civil. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Unix seconds, or undefined for a date that does not exist (30 Feb, 24:00:00). */
function instant(year: number, month: number, day: number, hour: number, minute: number, second: number): number | undefined {
  // 00:00:00 - 23:59:60: a leap second is allowed and counts as the next second.
  if (day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 60) return undefined;
  return daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
}

/**
 * Parses an HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete RFC 850 and asctime forms,
 * case-sensitive, into Unix seconds; undefined for anything else, which the callers must then
 * ignore (§13.1.3, §13.1.4). `Date.parse` is not used: it takes "Sun, 1" for 2001 and rolls
 * 30 February over into March.
 *
 * An RFC 850 date's two-digit year is the latest year with those digits that is not more than
 * 50 years after `nowMs` (§5.6.7).
 */
export function parseHttpDate(value: string, nowMs?: number): number | undefined {
  const text = trimOws(value);
  let m = IMF_FIXDATE.exec(text);
  if (m) return instant(Number(m[3]), monthNumber(m[2]!), Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  m = ASCTIME_DATE.exec(text);
  if (m) return instant(Number(m[6]), monthNumber(m[1]!), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
  m = RFC850_DATE.exec(text);
  if (!m) return undefined;
  const [month, day, hour, minute, second] = [monthNumber(m[2]!), Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])];
  const now = new Date(nowMs ?? Date.now());
  const limit = Date.UTC(now.getUTCFullYear() + 50, now.getUTCMonth(), now.getUTCDate(), now.getUTCHours(), now.getUTCMinutes(), now.getUTCSeconds()) / 1000;
  // The candidates, latest first: the year with these digits in the century after now's, then back.
  const first = now.getUTCFullYear() + 100 - ((now.getUTCFullYear() - Number(m[3])) % 100 + 100) % 100;
  for (let year = first; year > first - 500; year -= 100) {
    const at = instant(year, month, day, hour, minute, second);
    if (at !== undefined && at <= limit) return at;
    // Only 29 February exists in some of these years and not others; nothing else depends on it.
    if (at === undefined && !(month === 2 && day === 29)) return undefined;
  }
  return undefined;
}

function monthNumber(name: string): number {
  return MONTHS.indexOf(name) / 3 + 1;
}

/** Formats Unix seconds as an IMF-fixdate. */
/** A strong ETag for a body made in memory (a JSON answer): 64 bits of its hash, quoted. */
export function contentEtag(body: string): string {
  return `"${Bun.hash(body).toString(16)}"`;
}

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
export function ifRangeAllows(headers: HeaderSource, validators: Validators, nowMs = Date.now()): boolean {
  const ifRange = headers.get("if-range");
  if (ifRange === null) return true;
  const value = trimOws(ifRange);
  if (value.startsWith('"') || value.startsWith("W/")) {
    const tag = parseEntityTag(value);
    const current = parseEntityTag(validators.etag);
    return !!tag && !!current && strongMatch(tag, current);
  }
  // A date is a validator only when strong (§13.1.5): a Last-Modified at least a second before
  // now (§8.8.2.2), since the file could have changed again within its own second. (Compared
  // with now, not with the Date of the answer that carried it, which the server does not know;
  // Apache makes the same approximation.)
  const date = parseHttpDate(value);
  return date !== undefined && date === validators.lastModified && date <= Math.floor(nowMs / 1000) - 1;
}
