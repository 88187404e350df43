/**
 * The runtime's ceiling: bare `Bun.serve` returning `new Response(Bun.file(path))`.
 *
 * Bun answers single `Range` requests for file bodies itself (206 + Content-Range, sendfile). It
 * sets no validators, so this peer adds the smallest possible ETag / If-None-Match check (a string
 * precomputed at startup) to give the 304 workload a ceiling too. No router, no logging.
 *
 * With BENCH_MEMORY=1 ("bare Bun (memory)") every file is read into one in-memory Blob at start
 * and a single range is answered with a slice of it (206, Content-Range): Bun's ceiling for an
 * answer from memory, which is what Spool's RAM tier sends; issue 15's targets against nginx for
 * probes and hot 64 KiB ranges assume this ceiling is above nginx. The range parsing is the
 * least that answers the suite's requests correctly (`bytes=a-b`, `bytes=a-`, `bytes=-n`; one
 * range; anything else gets the whole file), not a general implementation.
 *
 * `GET /api/videos` is the same page Spool lists (newest first, 50 rows), read from Spool's own
 * SQLite file with a prepared `bun:sqlite` statement and answered with `Response.json`: the
 * runtime's ceiling for a database-backed JSON answer, with no framework, ORM, validation or
 * field mapping (rows go out with their column names).
 *
 * Env: PORT, HOST (default 127.0.0.1), BENCH_FILES = JSON {"key": "/abs/path"}, BENCH_MEMORY=1,
 *      BENCH_API_DB = optional path of Spool's SQLite database, for GET /api/videos.
 */
import { Database } from "bun:sqlite";
import { statSync } from "node:fs";

interface Served {
  path: string;
  etag: string;
  /** BENCH_MEMORY=1: the whole file, and the headers of its 200. */
  blob?: Blob;
  headers?: Headers;
}

const memory = process.env.BENCH_MEMORY === "1";
const files = new Map<string, Served>();
for (const [key, path] of Object.entries(JSON.parse(process.env.BENCH_FILES ?? "{}") as Record<string, string>)) {
  const st = statSync(path);
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const served: Served = { path, etag };
  if (memory) {
    served.blob = new Blob([await Bun.file(path).bytes()], { type: "video/mp4" });
    served.headers = new Headers({ etag, "accept-ranges": "bytes" });
  }
  files.set(`/files/${key}`, served);
}
const apiDb = process.env.BENCH_API_DB ? new Database(process.env.BENCH_API_DB, { readonly: true }) : undefined;
// `cast(? as integer)`: a bare `LIMIT ?` makes SQLite re-prepare the statement on every call.
const listPage = apiDb?.prepare("SELECT * FROM videos ORDER BY created_at DESC, id DESC LIMIT cast(? as integer)");

const RANGE = /^bytes=(\d*)-(\d*)$/;

function fromMemory(req: Request, blob: Blob, headers: Headers): Response {
  const m = RANGE.exec(req.headers.get("range") ?? "");
  if (!m || (m[1] === "" && m[2] === "")) return new Response(blob, { headers });
  const size = blob.size;
  const start = m[1] === "" ? Math.max(0, size - Number(m[2])) : Number(m[1]);
  const end = m[1] === "" || m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start > end || start >= size) return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } });
  const response = new Response(blob.slice(start, end + 1), { status: 206, headers });
  response.headers.set("content-range", `bytes ${start}-${end}/${size}`);
  return response;
}

const server = Bun.serve({
  hostname: process.env.HOST ?? "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  development: false,
  fetch(req) {
    const url = req.url;
    const path = url.slice(url.indexOf("/", 8));
    const f = files.get(path);
    if (f) {
      if (req.headers.get("if-none-match") === f.etag) return new Response(null, { status: 304, headers: { ETag: f.etag } });
      if (f.blob && f.headers) return fromMemory(req, f.blob, f.headers);
      return new Response(Bun.file(f.path), { headers: { ETag: f.etag } });
    }
    if (path === "/api/videos" && listPage) return Response.json({ items: listPage.all(50), nextCursor: null });
    if (path === "/health") return Response.json({ ok: true });
    return new Response("not found", { status: 404 });
  },
});
console.log(`bare-bun listening on ${server.hostname}:${server.port}${memory ? " (files in memory)" : ""}`);
