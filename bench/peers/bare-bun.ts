/**
 * The runtime's ceiling: bare `Bun.serve` returning `new Response(Bun.file(path))`.
 *
 * Bun answers single `Range` requests for file bodies itself (206 + Content-Range, sendfile). It
 * sets no validators, so this peer adds the smallest possible ETag / If-None-Match check (a string
 * precomputed at startup) to give the 304 workload a ceiling too. No router, no logging.
 *
 * Env: PORT, HOST (default 127.0.0.1), BENCH_FILES = JSON {"key": "/abs/path"},
 *      BENCH_API_JSON = optional path of a JSON document served at GET /api/videos.
 */
import { statSync } from "node:fs";

const files = new Map<string, { path: string; etag: string }>();
for (const [key, path] of Object.entries(JSON.parse(process.env.BENCH_FILES ?? "{}") as Record<string, string>)) {
  const st = statSync(path);
  files.set(`/files/${key}`, { path, etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"` });
}
const apiPath = process.env.BENCH_API_JSON;
const apiDoc: unknown = apiPath ? await Bun.file(apiPath).json() : { items: [] };

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
    if (path === "/api/videos") return Response.json(apiDoc);
    if (path === "/health") return Response.json({ ok: true });
    return new Response("not found", { status: 404 });
  },
});
console.log(`bare-bun listening on ${server.hostname}:${server.port}`);
