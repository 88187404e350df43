/**
 * Downloads an http(s) URL to a file while hashing it, for imports. Pure of the database: a job
 * handler, the API and the CLI call it the same way.
 *
 * - **SSRF.** Every connection (the first, each redirect hop, each resumption) resolves the
 *   host itself with `dns.promises.lookup({all: true})`, refuses it when any address is not
 *   public (addresses.ts; IMPORT_ALLOW_PRIVATE lifts that), and then connects to exactly the
 *   address it checked: the request gets a `lookup` function that answers only that address, so
 *   a DNS answer that changes between the check and the connection (rebinding) is never asked.
 *   Why node:http(s) and not `fetch`: Bun 1.4.5's fetch has no way to choose the address it
 *   connects to, and fetching the IP literal with a `Host` header breaks HTTPS (SNI and the
 *   certificate would be checked against the IP). Bun's node:http honours `lookup`, keeps the URL's
 *   host name for the Host header, SNI and certificate verification (checked on Bun 1.4.5: a
 *   certificate for another name fails with ERR_TLS_CERT_ALTNAME_INVALID, a made-up host name
 *   with a `lookup` answering 127.0.0.1 connects there). `agent: false`: no pooled socket to some
 *   earlier address.
 * - **Limits.** `maxBytes` by Content-Length or Content-Range before reading, then by the bytes
 *   counted; `connectTimeoutMs` until the response headers of each request (DNS, connect, TLS and
 *   the server's first answer); `idleTimeoutMs` between two pieces of the body, and at least
 *   `minBytesPerSecond` on average over each such window (curl's --speed-limit/--speed-time: a
 *   source that sends a byte a second would otherwise hold an import slot for ever);
 *   `maxDurationMs` for the whole download; `maxRedirects`.
 * - **Resumption.** A body that breaks off (an error, or fewer bytes than announced) from a source
 *   that said `Accept-Ranges: bytes` and gave a validator is asked again from where it stopped,
 *   with `Range` and `If-Range` (the strong ETag, else Last-Modified): a 206 continues the same
 *   file and hash only when it is exactly that continuation (the validator sent, the offset
 *   asked, the size already known: see partialMismatch), a 200 means the source changed and the
 *   download starts over, and so does a 206 that is not that continuation (a server ignoring
 *   If-Range). A body longer than its Content-Length or Content-Range is refused, never stored.
 * - **Content-Encoding.** Asked for `identity`, a source may still send gzip (an S3 object stored
 *   with `Content-Encoding: gzip` is served so to everyone): gzip, deflate, br and zstd are
 *   decoded, the file being the decoded bytes (hash, size and MAX_UPLOAD_BYTES all count those;
 *   the compressed bytes are held to MAX_UPLOAD_BYTES too). Ranges would count the compressed
 *   bytes, so a compressed body that breaks off is downloaded again from the start (a plain
 *   GET, same conditions and count as a resumption). Any other coding is refused by name.
 * - On any failure the file is removed and an ImportError says why in words.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isDiskFull } from "../../lib/disk-full.ts";
import { open, rm, type FileHandle } from "node:fs/promises";
import http, { STATUS_CODES, type IncomingMessage, type ClientRequest } from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { pipeline, Transform } from "node:stream";
import zlib from "node:zlib";
import { formatBytes, formatDuration, formatSeconds } from "../bytes.ts";
import { classifyAddress, inNetworks, isIpLiteral } from "./addresses.ts";
import { ImportError } from "./errors.ts";
import { bareHost, checkAddress, checkSourceUrl, type ImportPolicy } from "./policy.ts";
import { filenameFor } from "./filename.ts";

export interface DownloadProgress {
  /** Bytes written so far. */
  bytes: number;
  /** The whole size, when the source said (Content-Length or Content-Range). */
  total: number | null;
}

export interface DownloadOptions extends ImportPolicy {
  /** Largest file accepted (MAX_UPLOAD_BYTES). */
  maxBytes: number;
  /** Per request: from the start to the response headers. Default 30 s. */
  connectTimeoutMs?: number;
  /** Longest wait for the next piece of the body. Default 30 s. */
  idleTimeoutMs?: number;
  /** Slowest average accepted over each `idleTimeoutMs` window; 0 for none. Default 1 KiB/s. */
  minBytesPerSecond?: number;
  /** Longest the whole download may take, redirects and resumptions included; 0 for no limit. Default 6 h. */
  maxDurationMs?: number;
  /** Redirects followed per request. Default 5. */
  maxRedirects?: number;
  /** Times a broken-off body is resumed. Default 5. */
  maxResumes?: number;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Least time between two progress calls (the last one always comes). Default 250 ms. */
  progressIntervalMs?: number;
  /** Extra trusted CA certificates (PEM) for HTTPS sources. */
  ca?: string | string[];
}

export interface DownloadResult {
  sha256: string;
  size: number;
  /** The source's Content-Type (informative only: ffprobe decides what the bytes are). */
  contentType: string | null;
  /** The URL the bytes finally came from, after redirects. */
  url: string;
  /** A file name for the record: Content-Disposition's, else the URL path's last segment. */
  filename: string | null;
  /** Requests made, redirects and resumptions included. */
  requests: number;
  resumes: number;
}

export const DOWNLOAD_DEFAULTS = {
  connectTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  minBytesPerSecond: 1024,
  maxDurationMs: 6 * 60 * 60 * 1000,
  maxRedirects: 5,
  maxResumes: 5,
  progressIntervalMs: 250,
} as const;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = "Spool-import/1";

type Settings = DownloadOptions & typeof DOWNLOAD_DEFAULTS;

/** The body broke off: the bytes so far stay, the download may resume. */
class BodyInterrupted extends Error {
  constructor(override readonly cause: unknown) {
    super("interrupted");
  }
}

function statusText(code: number): string {
  const text = STATUS_CODES[code];
  return text ? `${code} ${text}` : String(code);
}

/** A node/Bun network error in words. */
function networkMessage(error: unknown, url: URL): string {
  const e = error as NodeJS.ErrnoException & { reason?: string };
  const where = url.host;
  switch (e?.code) {
    case "ECONNREFUSED":
      return `could not connect to ${where}: connection refused`;
    case "ECONNRESET":
      return `the connection to ${where} was reset`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `${where} is unreachable`;
    case "EPIPE":
      return `the connection to ${where} was closed`;
  }
  if (typeof e?.code === "string" && (e.code.startsWith("ERR_TLS") || e.code.includes("CERT") || e.code.startsWith("UNABLE_TO") || e.code.includes("SELF_SIGNED"))) {
    return `the TLS connection to ${where} failed: ${e.message}`;
  }
  const message = e instanceof Error ? e.message : String(error);
  return `the connection to ${where} failed: ${message}`;
}

/** `lookup` for node:http that answers only the address already checked. */
function fixedLookup(address: string, family: 4 | 6): LookupFunction {
  return ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as unknown as LookupFunction;
}

/** The addresses `host` resolves to, every one checked; the one to connect to first. */
async function resolveChecked(url: URL, settings: Settings, context: "source" | "redirect"): Promise<{ address: string; family: 4 | 6 }> {
  const host = bareHost(url);
  if (isIpLiteral(host)) {
    checkAddress(host, settings, context);
    return { address: host, family: host.includes(":") ? 6 : 4 };
  }
  let found: { address: string; family: number }[];
  try {
    found = await dnsLookup(host, { all: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ImportError("dns_failed", code === "ENOTFOUND" || code === "ENODATA" ? `The host ${host} was not found (DNS)` : `The host ${host} could not be resolved (${code ?? String(error)})`);
  }
  if (!found.length) throw new ImportError("dns_failed", `The host ${host} has no address`);
  if (!settings.allowPrivate) {
    // Every address, not just the one used: a name that also points inside is refused outright.
    for (const { address } of found) {
      const verdict = classifyAddress(address);
      if (!verdict.public && !inNetworks(address, settings.allowedNetworks ?? [])) {
        const what = context === "redirect" ? "Redirect to" : "Import from";
        throw new ImportError("blocked_address", `${what} ${verdict.description} is not allowed (${host} resolves to ${address}); the server allows public addresses only (IMPORT_ALLOW_PRIVATE, IMPORT_ALLOWED_NETWORKS)`);
      }
    }
  }
  const first = found.find((a) => a.family === 4) ?? found[0]!;
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

interface Live {
  request?: ClientRequest;
  response?: IncomingMessage;
}

/** One request to the checked address; resolves with the response headers. */
async function request(url: URL, headers: Record<string, string>, settings: Settings, context: "source" | "redirect", live: Live): Promise<IncomingMessage> {
  const limit = settings.connectTimeoutMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new ImportError("timeout", `timed out after ${formatSeconds(limit)} waiting for ${url.host} to answer`);
      live.request?.destroy(error);
      reject(error);
    }, limit);
  });
  timedOut.catch(() => {});
  try {
    const resolving = resolveChecked(url, settings, context);
    resolving.catch(() => {});
    const target = await Promise.race([resolving, timedOut]);
    settings.signal?.throwIfAborted();
    const client = url.protocol === "https:" ? https : http;
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      const req = client.request(url, {
        method: "GET",
        agent: false,
        lookup: fixedLookup(target.address, target.family),
        headers: { "user-agent": USER_AGENT, accept: "*/*", "accept-encoding": "identity", ...headers },
        ...(settings.ca ? { ca: settings.ca } : {}),
      });
      live.request = req;
      req.once("response", resolve);
      req.once("error", (error) => reject(error instanceof ImportError ? error : new ImportError("network", networkMessage(error, url))));
      req.end();
    });
    // The loser of each race may still reject later: that must not be an unhandled rejection.
    answered.catch(() => {});
    return await Promise.race([answered, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Follows redirects (each hop checked like the first URL); resolves with the final response. */
async function follow(start: URL, headers: Record<string, string>, settings: Settings, live: Live, counter: { requests: number }): Promise<{ response: IncomingMessage; url: URL }> {
  let url = start;
  for (let hops = 0; ; hops++) {
    counter.requests++;
    const response = await request(url, headers, settings, hops === 0 ? "source" : "redirect", live);
    live.response = response;
    const status = response.statusCode ?? 0;
    if (!REDIRECTS.has(status)) return { response, url };
    response.destroy();
    const location = response.headers.location;
    if (!location) throw new ImportError("redirect", `source answered ${statusText(status)} without a Location`);
    if (hops >= settings.maxRedirects) throw new ImportError("redirect", `too many redirects (more than ${settings.maxRedirects})`);
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new ImportError("redirect", `source redirected to an invalid URL: ${JSON.stringify(location.slice(0, 200))}`);
    }
    url = checkSourceUrl(next, settings, "redirect");
  }
}

/** "bytes 100-199/1000" → its parts; total null for "*". */
function parseContentRange(value: string | undefined): { start: number; end: number; total: number | null } | null {
  const m = value ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim()) : null;
  if (!m) return null;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? null : Number(m[3]) };
}

function contentLength(response: IncomingMessage): number | null {
  const raw = response.headers["content-length"];
  return raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : null;
}

interface Validator {
  header: "etag" | "last-modified";
  value: string;
}

/** The strong ETag, else Last-Modified: what `If-Range` may carry (RFC 9110 §13.1.5). */
function validatorOf(response: IncomingMessage): Validator | null {
  const etag = response.headers.etag;
  if (etag && !etag.startsWith("W/")) return { header: "etag", value: etag };
  const modified = response.headers["last-modified"];
  return modified ? { header: "last-modified", value: modified } : null;
}

/** The Content-Encodings decoded (RFC 9110 §8.4.1; `x-gzip` is gzip's old name). */
const DECODERS: Record<string, () => Transform> = {
  gzip: () => zlib.createGunzip(),
  "x-gzip": () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
  zstd: () => zlib.createZstdDecompress(),
};

/** The body's coding (null for none or identity); an ImportError for one not decoded here. */
function encodingOf(response: IncomingMessage): string | null {
  const raw = response.headers["content-encoding"];
  if (!raw) return null;
  const codings = raw
    .split(",")
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c && c !== "identity");
  if (!codings.length) return null;
  if (codings.length > 1 || !Object.hasOwn(DECODERS, codings[0]!)) {
    throw new ImportError("source_invalid", `the source sent Content-Encoding: ${raw.slice(0, 100)}, which this server does not decode (it asks for identity, and decodes gzip, deflate, br or zstd alone)`);
  }
  return codings[0]!;
}

/**
 * Why a 206 answering `Range: bytes=<offset>-` with `If-Range: <sent>` is not the continuation of
 * the file being downloaded, or null when it is. It must carry the very validator sent (a server
 * that ignores If-Range answers 206 for a file that changed), be unencoded like the bytes so far,
 * start at the offset asked, be of the size already known (`total`), end within it, and have a
 * Content-Length (if any) matching its range. The validator is required, not merely compared when
 * present: RFC 9110 §15.3.7 has a 206 carry the ETag a 200 would, and a Last-Modified a server
 * leaves out of its 206 costs a download from the start, never a file made of two versions.
 */
function partialMismatch(response: IncomingMessage, offset: number, total: number | null, sent: Validator, firstEtag: string | null): string | null {
  const coding = response.headers["content-encoding"];
  if (coding && coding.trim().toLowerCase() !== "identity") return `it is encoded (Content-Encoding: ${coding})`;
  const got = response.headers[sent.header];
  const name = sent.header === "etag" ? "ETag" : "Last-Modified";
  if (got !== sent.value) return `its ${name} is ${got ?? "missing"}, not ${sent.value}`;
  // Resumed on Last-Modified, a (weak) ETag that changed still tells another version.
  const etag = response.headers.etag;
  if (firstEtag && etag && etag.replace(/^W\//, "") !== firstEtag.replace(/^W\//, "")) return `its ETag is ${etag}, not ${firstEtag}`;
  const raw = response.headers["content-range"];
  const range = parseContentRange(raw);
  if (!range || range.end < range.start) return `its Content-Range is ${raw === undefined ? "missing" : JSON.stringify(raw.slice(0, 100))}`;
  if (range.start !== offset) return `its Content-Range ${raw} does not start at byte ${offset}`;
  if (total !== null && range.total !== total) return `its Content-Range ${raw} is not of the ${total} bytes announced before`;
  const size = total ?? range.total;
  if (size !== null && range.end >= size) return `its Content-Range ${raw} ends past the file's ${size} bytes`;
  const length = contentLength(response);
  if (length !== null && length !== range.end - range.start + 1) return `its Content-Length ${length} does not match its Content-Range ${raw}`;
  return null;
}

/** `size` announced by the source, or (undefined) counted past the limit. */
function tooLarge(size: number | undefined, maxBytes: number): ImportError {
  const what = size === undefined ? `it sent more than the limit of ${formatBytes(maxBytes)}` : `it announces ${formatBytes(size)}, the limit is ${formatBytes(maxBytes)}`;
  return new ImportError("too_large", `The source is larger than this server accepts: ${what} (MAX_UPLOAD_BYTES)`);
}

/**
 * Streams `source` into `dest` (created or truncated), hashing it. Resolves once every byte is
 * on disk; rejects with an ImportError, having removed `dest`.
 */
export async function downloadToFile(source: string | URL, dest: string, options: DownloadOptions): Promise<DownloadResult> {
  const settings: Settings = { ...DOWNLOAD_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Settings;
  // The whole-download deadline aborts like a cancellation (every wait already listens for
  // that); the catch below then tells which of the two it was.
  const outer = settings.signal;
  const deadline = new AbortController();
  let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  if (settings.maxDurationMs > 0) {
    deadlineTimer = setTimeout(() => deadline.abort(), settings.maxDurationMs);
    settings.signal = outer ? AbortSignal.any([outer, deadline.signal]) : deadline.signal;
  }
  const overDeadline = () => deadline.signal.aborted && !outer?.aborted;
  const live: Live = {};
  const onAbort = () => {
    const error = new ImportError("aborted", "The import was cancelled");
    live.request?.destroy(error);
    live.response?.destroy(error);
  };
  settings.signal?.addEventListener("abort", onAbort, { once: true });
  let file: FileHandle | undefined;
  try {
    settings.signal?.throwIfAborted();
    const start = checkSourceUrl(source, settings);
    file = await open(dest, "w");
    return await transfer(start, file, settings, live);
  } catch (error) {
    await file?.close().catch(() => {});
    file = undefined;
    await rm(dest, { force: true });
    live.request?.destroy();
    live.response?.destroy();
    if (overDeadline()) throw new ImportError("timeout", `took longer than ${formatDuration(settings.maxDurationMs)} (IMPORT_MAX_DURATION_MS)`);
    if (error instanceof ImportError) throw error;
    if (settings.signal?.aborted) throw new ImportError("aborted", "The import was cancelled");
    throw error;
  } finally {
    clearTimeout(deadlineTimer);
    await file?.close().catch(() => {});
    settings.signal?.removeEventListener("abort", onAbort);
  }
}

async function transfer(start: URL, file: FileHandle, settings: Settings, live: Live): Promise<DownloadResult> {
  const counter = { requests: 0 };
  let { response, url } = await follow(start, {}, settings, live, counter);
  const first = response.statusCode ?? 0;
  if (first !== 200) throw new ImportError("source_status", `source answered ${statusText(first)}`, first);
  const contentType = response.headers["content-type"] ?? null;
  const filename = filenameFor(url, response.headers["content-disposition"]);

  let hasher = new Bun.CryptoHasher("sha256");
  /** Bytes of the file written (decoded ones when the source compresses). */
  let bytes = 0;
  /** The file's size when the source said (never for a compressed body: its length is the compressed one). */
  let total: number | null = null;
  /** The body's Content-Encoding, null for none. */
  let encoding: string | null = null;
  let validator: Validator | null = null;
  let etag: string | null = null;
  let ranges = false;
  /** What the current response's body announced (Content-Length, or the 206's Content-Range), in bytes as sent. */
  let expected: { bytes: number; said: string } | null = null;
  let resumes = 0;
  let lastProgress = 0;
  const progress = (force = false) => {
    if (!settings.onProgress) return;
    const now = performance.now();
    if (!force && now - lastProgress < settings.progressIntervalMs) return;
    lastProgress = now;
    settings.onProgress({ bytes, total });
  };
  /** A 200: the whole file from its first byte, whatever was written before. */
  const begin = async (answer: IncomingMessage) => {
    encoding = encodingOf(answer);
    const length = contentLength(answer);
    expected = length === null ? null : { bytes: length, said: `Content-Length: ${length}` };
    total = encoding ? null : length;
    validator = validatorOf(answer);
    etag = answer.headers.etag ?? null;
    ranges = answer.headers["accept-ranges"]?.toLowerCase() === "bytes";
    // A compressed length over the limit is a file over it too (compression does not grow
    // a file by more than a few bytes).
    if (length !== null && length > settings.maxBytes) throw tooLarge(length, settings.maxBytes);
    if (bytes > 0) await file.truncate(0);
    hasher = new Bun.CryptoHasher("sha256");
    bytes = 0;
  };
  /** Asks for the whole file again (no Range): after a compressed body broke off, or a 206 that was not the continuation asked. */
  const startOver = async (why: string) => {
    ({ response, url } = await follow(url, {}, settings, live, counter));
    const status = response.statusCode ?? 0;
    if (status !== 200) throw new ImportError("source_status", `source answered ${statusText(status)} when asked for the file again (${why})`, status);
    await begin(response);
  };
  const closedEarly = (received: number) =>
    new BodyInterrupted(
      new ImportError(
        "network",
        encoding || total === null
          ? `the connection closed after ${formatBytes(received)} of ${formatBytes(expected?.bytes ?? 0)}${encoding ? ` (${encoding})` : ""}`
          : `the connection closed after ${formatBytes(bytes)} of ${formatBytes(total)}`,
      ),
    );
  await begin(response);
  progress(true);

  for (;;) {
    try {
      const received = await readBody(response);
      if (expected && received < expected.bytes) throw closedEarly(received);
      // A 206 whose range ended before the file does (a server that caps its ranges).
      if (!encoding && total !== null && bytes < total) throw closedEarly(received);
      break;
    } catch (error) {
      if (!(error instanceof BodyInterrupted)) throw error;
      const reason = error.cause instanceof ImportError ? error.cause : new ImportError("network", networkMessage(error.cause, url));
      if (reason.code === "aborted" || settings.signal?.aborted) throw new ImportError("aborted", "The import was cancelled");
      if (!ranges || !validator) {
        const why = !ranges ? "the source does not accept range requests" : "the source gives no ETag or Last-Modified to resume against";
        throw new ImportError(reason.code, `${reason.message} (${formatBytes(bytes)} received; not resumed: ${why})`);
      }
      if (resumes >= settings.maxResumes) throw new ImportError(reason.code, `${reason.message} (${formatBytes(bytes)} received; gave up after ${resumes} resumptions)`);
      resumes++;
      if (encoding) {
        // Ranges count the compressed bytes, and the decoder's state went with the broken body:
        // the file again from its start (a plain GET; If-Range is meaningless without Range).
        await startOver(`the body, ${encoding}-compressed, broke off`);
        continue;
      }
      const sent: Validator = validator;
      ({ response, url } = await follow(url, { range: `bytes=${bytes}-`, "if-range": sent.value }, settings, live, counter));
      const status = response.statusCode ?? 0;
      if (status === 206) {
        const mismatch = partialMismatch(response, bytes, total, sent, etag);
        if (mismatch !== null) {
          // Not the continuation of these bytes (a server that ignores If-Range, a file that
          // changed size, a range that is not the one asked): appending it would make a file of
          // two versions. Starting over is what a 200 here would have done, costs only the bytes
          // already fetched, and stays within maxResumes since only a break-off gets here.
          response.destroy();
          await startOver(`the answer to the resumption was not its continuation: ${mismatch}`);
          continue;
        }
        const range = parseContentRange(response.headers["content-range"])!;
        if (total === null) total = range.total;
        expected = { bytes: range.end - range.start + 1, said: `Content-Range: ${response.headers["content-range"]}` };
        if (total !== null && total > settings.maxBytes) throw tooLarge(total, settings.maxBytes);
      } else if (status === 200) {
        // The file changed (If-Range failed) or the range was ignored: start over.
        await begin(response);
      } else {
        throw new ImportError("source_status", `source answered ${statusText(status)} when asked to resume`, status);
      }
    }
  }
  progress(true);
  return { sha256: hasher.digest("hex"), size: bytes, contentType, url: url.href, filename, requests: counter.requests, resumes };

  /**
   * Appends the response's body (decoded), and resolves with the bytes received as sent
   * (compressed ones for a compressed body). A break-off becomes BodyInterrupted; a limit, or a
   * body that cannot be the file, an ImportError.
   */
  async function readBody(body: IncomingMessage): Promise<number> {
    const idle = settings.idleTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => body.destroy(new ImportError("timeout", `timed out after ${formatSeconds(idle)} without data`)), idle);
    };
    arm();
    let received = 0;
    // The minimum rate, checked once per window rather than per chunk. A window under it is not
    // a verdict yet: it is given when the next piece arrives (the source is still sending, only
    // too slowly), while a source that has stopped altogether is left to the idle timer, whose
    // "without data" is then the truth. (Both ending the body on their own clocks raced: a
    // source that sent a little and then nothing was reported as slow.)
    const perWindow = Math.ceil((settings.minBytesPerSecond * idle) / 1000);
    let windowStart = 0;
    let tooSlow: ImportError | null = null;
    const pace =
      perWindow > 0
        ? setInterval(() => {
            if (received - windowStart >= perWindow) windowStart = received;
            else {
              tooSlow = new ImportError("timeout", `slower than ${formatBytes(settings.minBytesPerSecond)}/s over ${formatSeconds(idle)} (IMPORT_MIN_BYTES_PER_SECOND)`);
              clearInterval(pace);
            }
          }, idle)
        : undefined;
    const limit = expected;
    /** Each piece as it comes off the connection, before anything of it is stored. */
    const arrived = (chunk: Buffer) => {
      if (tooSlow) throw tooSlow;
      arm();
      received += chunk.byteLength;
      if (limit && received > limit.bytes) throw new ImportError("source_invalid", `the source sent more than it announced (${limit.said}); nothing of it is kept`);
      if (received > settings.maxBytes) throw tooLarge(undefined, settings.maxBytes);
    };
    const store = async (chunk: Buffer) => {
      if (bytes + chunk.byteLength > settings.maxBytes) throw tooLarge(undefined, settings.maxBytes);
      // Positioned writes: a restart (truncate) begins again at 0 whatever was written before.
      await file.write(chunk, 0, chunk.byteLength, bytes);
      hasher.update(chunk);
      bytes += chunk.byteLength;
      progress();
    };
    let wireFailed = false;
    try {
      if (!encoding) {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          arrived(chunk);
          await store(chunk);
        }
      } else {
        // Limits hold on both sides: the compressed pieces in `arrived`, the decoded ones in
        // `store` (a small body that inflates past MAX_UPLOAD_BYTES stops there).
        const decoder = DECODERS[encoding]!();
        const tap = new Transform({
          transform(chunk: Buffer, _encoding, done) {
            try {
              arrived(chunk);
              done(null, chunk);
            } catch (error) {
              done(error as Error);
            }
          },
        });
        body.once("error", () => (wireFailed = true));
        pipeline(body, tap, decoder, () => {});
        for await (const chunk of decoder as AsyncIterable<Buffer>) await store(chunk);
      }
    } catch (error) {
      if (error instanceof ImportError && (error.code === "too_large" || error.code === "source_invalid")) throw error;
      // Our own write failed, not the connection: resuming would fail the same way.
      if (isDiskFull(error)) throw error;
      if (encoding && !wireFailed && !(error instanceof ImportError) && (error as NodeJS.ErrnoException)?.code !== "ERR_STREAM_PREMATURE_CLOSE") {
        // The decoder's own failure: data cut short (the connection closed early) or not the
        // coding it claims.
        if (limit && received < limit.bytes) throw closedEarly(received);
        throw new ImportError("source_invalid", `the source's ${encoding} data does not decompress (${error instanceof Error ? error.message : String(error)})`);
      }
      throw new BodyInterrupted(error);
    } finally {
      clearTimeout(timer);
      clearInterval(pace);
    }
    return received;
  }
}
