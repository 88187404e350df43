/**
 * What a Node user would pick: Express 5 with `express.static` (the `send` package) and its
 * defaults (weak ETag, Last-Modified, Accept-Ranges, 206 for single ranges, streams via fs).
 *
 * The harness runs it on Node (bundled to bench/.cache/peers/express.js with Bun.build, packages
 * external) so the figure is Node's; it falls back to Bun when `node` is missing.
 *
 * Env: PORT, HOST (default 127.0.0.1), BENCH_ROOT = directory served under /media.
 */
import express from "express";

const root = process.env.BENCH_ROOT;
if (!root) throw new Error("BENCH_ROOT is required");
const app = express();
app.disable("x-powered-by");
app.use("/media", express.static(root, { fallthrough: false }));
app.get("/health", (_req, res) => {
  res.json({ ok: true });
});
const host = process.env.HOST ?? "127.0.0.1";
const server = app.listen(Number(process.env.PORT ?? 0), host, () => {
  const addr = server.address();
  console.log(`express listening on ${typeof addr === "object" && addr ? `${addr.address}:${addr.port}` : String(addr)}`);
});
server.keepAliveTimeout = 65_000;
