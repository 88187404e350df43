/**
 * The HTTP file engine: turns a request and a FileEntity into the exact response RFC 9110 asks
 * for. All decisions come from the pure modules in src/http; this file only assembles bodies.
 *
 * Bodies are `BunFile` slices, which Bun sends with sendfile(2): no copy through JavaScript.
 * Two cases cannot be sent that way (see `streamSlices`) and use a bounded pull stream instead.
 */
import { evaluatePreconditions, ifRangeAllows } from "../http/conditional.ts";
import { errorResponse, httpErrorResponse, methodNotAllowed, preconditionFailed } from "../http/errors.ts";
import { layoutMultipart, makeBoundary, multipartContentType } from "../http/multipart.ts";
import { contentRange, planRange, unsatisfiedRange, type ByteRange, type RangeLimits, DEFAULT_RANGE_LIMITS } from "../http/range.ts";
import { hot } from "../metrics/metrics.ts";
import type { FileEntity } from "./entity.ts";
import { KEPT_DESCRIPTOR_ANSWER_LIMIT, keptFile } from "./open-files.ts";

const CHUNK = 256 * 1024;
const encoder = new TextEncoder();

/**
 * A pull stream over text and file ranges, reading at most CHUNK bytes at a time.
 *
 * Why not a BunFile: Bun.serve applies the request's Range header itself to any file-backed
 * 200 response, and a Blob made of file slices loses their bytes. So the two responses that
 * are not a single slice (a 200 that must ignore a Range, and multipart/byteranges) go here.
 */
function streamSlices(entity: FileEntity, pieces: (string | ByteRange)[]): ReadableStream<Uint8Array> {
  let index = 0;
  let offset = -1;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const piece = pieces[index];
        if (piece === undefined) return controller.close();
        if (typeof piece === "string") {
          index++;
          return controller.enqueue(encoder.encode(piece));
        }
        if (offset < 0) offset = piece.start;
        const end = Math.min(offset + CHUNK, piece.end + 1);
        const bytes = new Uint8Array(await (entity.memory?.read(entity, offset, end - 1, true) ?? entity.file.slice(offset, end)).arrayBuffer());
        // A file that shrank underneath us must not turn into an endless or short-framed body.
        if (bytes.byteLength !== end - offset) return controller.error(new Error(`short read from ${entity.path}`));
        controller.enqueue(bytes);
        offset = end;
        if (offset > piece.end) {
          index++;
          offset = -1;
        }
      },
    },
    { highWaterMark: 0 },
  );
}

/** Safari's probe (and many players' first request). */
const PROBE = "bytes=0-1";

/**
 * Keeps the probe's answer on the entity: its two bytes copied out of the tier's block (a slice
 * would pin the whole block after its eviction) and its headers. Bytes never change under an
 * entity (a changed file gets a new one), so neither does this answer.
 */
function keepProbe(entity: FileEntity, bytes: Blob, headers: Headers): void {
  entity.probe = null;
  const copy = new Headers(headers);
  bytes.bytes().then(
    (two) => {
      if (two.byteLength === 2) entity.probe = { body: new Blob([two]), headers: copy };
    },
    () => {},
  );
}

/**
 * Single ranges Bun's server resolves exactly as `planRange` does. Bun applies a GET's Range
 * itself to a whole-file body (206, Content-Range, Content-Length, sendfile), and doing so costs
 * it less than building a `slice()` Response in JavaScript (10-15% per small range). Spool has
 * already decided the range is satisfiable and that If-Range allows it; only the sending is
 * delegated, and only for this canonical form: one range, lower-case unit, no whitespace, and at
 * most 15 digits (Bun gives up past 2^64 where `planRange` clamps). Everything else, and HEAD
 * (which Bun does not range), goes through `slice()`. test/integration/stream.test.ts pins
 * the exact bytes and headers of both paths.
 */
const NATIVE_RANGE = /^bytes=(?:\d{1,15}-\d{0,15}|-\d{1,15})$/;

/**
 * Responses whose 206 Bun makes itself: they say 200 until Bun sends them, so whoever counts
 * statuses (the stream route's metrics) asks here. A WeakSet: nothing to clean up.
 */
export const nativeRanged = new WeakSet<Response>();

export interface EngineOptions {
  rangeLimits?: RangeLimits;
}

export function serveEntity(request: Request, entity: FileEntity, options: EngineOptions = {}): Response {
  const method = request.method;
  if (method !== "GET" && method !== "HEAD") {
    return methodNotAllowed(method, "here", "GET, HEAD");
  }
  return preconditionResponse(request, entity) ?? serveBody(request, entity, options);
}

/** For a GET or HEAD: the 304 or 412 its preconditions call for (§13.2.2), or null to go on. */
export function preconditionResponse(request: Request, entity: FileEntity): Response | null {
  const outcome = evaluatePreconditions(request.method, request.headers, entity);
  if (outcome === "not-modified") return new Response(null, { status: 304, headers: entity.notModifiedHeaders });
  if (outcome === "failed") return httpErrorResponse(preconditionFailed());
  return null;
}

/** For a GET or HEAD whose preconditions passed: the whole file, a range, ranges, or 416. */
export function serveBody(request: Request, entity: FileEntity, options: EngineOptions = {}): Response {
  const method = request.method;
  const headers = request.headers;
  const rangeHeader = headers.get("range");
  const memory = entity.memory;
  if (rangeHeader === null) {
    if (method !== "GET") return new Response(entity.file, { headers: entity.responseHeaders });
    hot.fileBytes += entity.size;
    // A small file held in memory: no Range here, so Bun has nothing to apply to the body.
    if (memory !== undefined && entity.size > 0 && entity.size <= memory.maxAnswerBytes) {
      const bytes = memory.read(entity, 0, entity.size - 1);
      if (bytes !== undefined) return new Response(bytes, { headers: entity.responseHeaders });
    } else memory?.touch(entity);
    return new Response(entity.file, { headers: entity.responseHeaders });
  }

  // Safari's probe, the same answer every time: made once (below), sent without parsing.
  const probe = entity.probe;
  if (probe && rangeHeader === PROBE && method === "GET" && headers.get("if-range") === null) {
    hot.fileBytes += 2;
    memory?.noteHead(entity);
    return new Response(probe.body, { status: 206, headers: probe.headers });
  }

  const plan = ifRangeAllows(headers, entity) ? planRange(rangeHeader, entity.size, options.rangeLimits ?? DEFAULT_RANGE_LIMITS) : ({ kind: "full" } as const);
  const size = entity.size;

  if (plan.kind === "unsatisfiable") {
    return errorResponse(416, "range_not_satisfiable", `No requested range is satisfiable for ${size} bytes`, {
      "content-range": unsatisfiedRange(size),
      "accept-ranges": "bytes",
    });
  }

  if (plan.kind === "full") {
    // HEAD has no body, so Bun leaves it alone and the exact Content-Length stays.
    if (method === "HEAD") return new Response(entity.file, { headers: entity.responseHeaders });
    // Not the file itself: Bun would apply the Range to it and answer its own 416.
    if (size === 0) return new Response("", { headers: entity.responseHeaders });
    hot.fileBytes += size;
    return new Response(streamSlices(entity, [{ start: 0, end: size - 1 }]), { headers: entity.responseHeaders });
  }

  const ranges = plan.ranges;
  if (method === "GET") for (const r of ranges) hot.fileBytes += r.end - r.start + 1;
  if (ranges.length === 1) {
    const r0 = ranges[0]!;
    // Small answers whose blocks are all in RAM: no file open, read and close per answer. With
    // kept descriptors (local files), only those from offset 0, which a kept descriptor cannot
    // send (src/files/open-files.ts): past 0 one costs about what memory does, without the tier's
    // fills and the GC pressure of its answers (Bun 1.4.5 counts every Blob slice as allocated,
    // oven-sh/bun#41554: at c=256 p99 was 79 ms with every range eligible, 51 ms with these).
    if (memory !== undefined && method === "GET" && (r0.start === 0 || entity.descriptors === undefined)) {
      if (r0.end - r0.start < memory.maxAnswerBytes) {
        const bytes = memory.read(entity, r0.start, r0.end);
        if (bytes !== undefined) {
          const response = new Response(bytes, { status: 206, headers: entity.responseHeaders });
          response.headers.set("content-range", contentRange(r0, size));
          if (rangeHeader === PROBE && entity.probe === undefined) keepProbe(entity, bytes, response.headers);
          return response;
        }
      } else memory.touch(entity);
    }
    // Same bytes, less work: Bun's own range code sends this one (see NATIVE_RANGE).
    if (method === "GET" && NATIVE_RANGE.test(rangeHeader)) {
      // A short range past the start: on the file's kept descriptor, no open per answer.
      const body = r0.start > 0 && r0.end - r0.start + 1 < KEPT_DESCRIPTOR_ANSWER_LIMIT ? keptFile(entity, entity.file) : entity.file;
      const response = new Response(body, { headers: entity.nativeRangeHeaders });
      nativeRanged.add(response);
      return response;
    }
    const response = new Response(entity.file.slice(r0.start, r0.end + 1), { status: 206, headers: entity.responseHeaders });
    // The response holds its own copy of the shared Headers, so this does not leak into it.
    response.headers.set("content-range", contentRange(r0, size));
    return response;
  }

  const boundary = makeBoundary();
  const layout = layoutMultipart(ranges, size, entity.contentType, boundary);
  const multipartHeaders = { ...entity.headers, "content-type": multipartContentType(boundary) };
  if (method === "HEAD") {
    return new Response(null, { status: 206, headers: { ...multipartHeaders, "content-length": String(layout.length) } });
  }
  const pieces: (string | ByteRange)[] = [];
  ranges.forEach((r, i) => pieces.push(layout.heads[i]!, r));
  pieces.push(layout.tail);
  return new Response(streamSlices(entity, pieces), { status: 206, headers: multipartHeaders });
}
