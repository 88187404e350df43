/**
 * The runtime's ceiling: bare `Bun.serve` returning `new Response(Bun.file(path))`.
 *
 * Bun answers single `Range` requests for file bodies itself (206 + Content-Range, sendfile). It
 * sets no validators, so this peer adds the smallest possible ETag / If-None-Match check (a string
 * precomputed at startup) to give the 304 workload a ceiling too. No router, no logging.
 *
 * `GET /api/videos` is the same page Spool lists (newest first, 50 rows), read from Spool's own
 * SQLite file with a prepared `bun:sqlite` statement and answered with `Response.json`: the
 * runtime's ceiling for a database-backed JSON answer, with no framework, ORM, validation or
 * field mapping (rows go out with their column names).
 *
 * Env: PORT, HOST (default 127.0.0.1), BENCH_FILES = JSON {"key": "/abs/path"},
 *      BENCH_API_DB = optional path of Spool's SQLite database, for GET /api/videos.
 */
import { Database } from "bun:sqlite";
import { statSync } from "node:fs";

const files = new Map<string, { path: string; etag: string }>();
for (const [key, path] of Object.entries(JSON.parse(process.env.BENCH_FILES ?? "{}") as Record<string, string>)) {
  const st = statSync(path);
  files.set(`/files/${key}`, { path, etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"` });
}
const apiDb = process.env.BENCH_API_DB ? new Database(process.env.BENCH_API_DB, { readonly: true }) : undefined;
// `cast(? as integer)`: a bare `LIMIT ?` makes SQLite re-prepare the statement on every call.
const listPage = apiDb?.prepare("SELECT * FROM videos ORDER BY created_at DESC, id DESC LIMIT cast(? as integer)");

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
      return new Response(Bun.file(f.path), { headers: { ETag: f.etag } });
    }
    if (path === "/api/videos" && listPage) return Response.json({ items: listPage.all(50), nextCursor: null });
    if (path === "/health") return Response.json({ ok: true });
    return new Response("not found", { status: 404 });
  },
});
console.log(`bare-bun listening on ${server.hostname}:${server.port}`);
