/**
 * `bun run build`: bundles the server (src/index.ts) into dist/, which `npm start` and the
 * Dockerfile run. Why bundle a Bun program at all: every module Bun loads keeps its source,
 * its module record and environment, and its code objects for the life of the process, and a
 * full garbage collection marks all of them. One bundle instead of ~660 modules (most of them
 * TypeBox's and Drizzle's), measured with bench/heap.ts on the bench video (two runs each, one
 * process; src → dist): RSS at start 70.3 → 63.3 MiB, peak with 1,000 slow readers after the
 * API was used 82.6 → 75.3 MiB, live heap objects 68.5k → 58.6k; a WORKERS child that has only
 * streamed peaks at 61.5-62.3 MiB with 1,000 slow readers (67.3 from source).
 *
 * - Lazy imports stay lazy: `splitting` puts each `import()` (the Elysia app in a WORKERS child,
 *   tus, jose, the PostgreSQL dialect) in its own chunk, loaded when first used.
 * - Minified, but not its names: Elysia 1.4 compiles each route's handler from generated source
 *   that names the bundle's own functions, and renamed identifiers break it silently (with
 *   `minify: true`, query bounds such as `?limit=0` went unchecked and unconverted, while the
 *   same server from src/ answered 400; elysiajs/elysia#724, #1711). Keeping names costs about
 *   0.6 MiB of RSS per process (1.2 → 1.7 MB of JavaScript; 77.3 → 77.9 MiB after start-up and a
 *   few requests, three runs each, 2026-12-02). test/integration/bundle.test.ts checks the
 *   validation on the bundle. Source maps are written beside the chunks (`*.js.map`) but not linked:
 *   Bun loads a linked map with its chunk, 2.6 MiB more per process, to translate stack traces,
 *   which Spool logs only at LOG_LEVEL=debug. Decode a bundle's stack with the map, or run
 *   `bun src/index.ts` (`npm run dev`) when debugging.
 * - Files a module reads at run time are found through src/paths.ts, which resolves from dist/
 *   as it does from src/ (both sit one level below the root).
 * - Written next to what a running server may still load: chunks are content-named, old ones are
 *   left in place (a server that has not yet loaded a lazy chunk keeps finding it), each file
 *   is moved into dist/ whole, and the entry last. Files no build has written for a day are
 *   removed, so rebuilds do not pile up chunks.
 */
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const dist = join(root, "dist");
const staging = join(root, `dist.tmp-${process.pid}`);
/**
 * Files of older builds are kept this long: a server started from one may still load a lazy
 * chunk it has not needed yet (a day covers a development machine's restarts).
 */
const STALE_MS = 24 * 60 * 60 * 1000;

await rm(staging, { recursive: true, force: true });
try {
  const result = await Bun.build({
    entrypoints: [join(root, "src/index.ts")],
    outdir: staging,
    target: "bun",
    splitting: true,
    minify: { whitespace: true, syntax: true, identifiers: false },
    sourcemap: "external",
    // Loaded only for LOG_FORMAT=pretty (src/lib/log.ts): from node_modules when asked for.
    external: ["pino-pretty"],
  });
  if (!result.success) throw new AggregateError(result.logs, "spool: the bundle failed to build");
  await mkdir(dist, { recursive: true });
  const files = await readdir(staging);
  const entry = "index.js";
  for (const name of files.filter((f) => f !== entry)) await rename(join(staging, name), join(dist, name));
  await rename(join(staging, entry), join(dist, entry));
  const stale = Date.now() - STALE_MS;
  for (const name of await readdir(dist)) {
    if (files.includes(name)) continue;
    const info = await stat(join(dist, name)).catch(() => undefined);
    if (info && info.mtimeMs < stale) await rm(join(dist, name), { force: true });
  }
  console.log(`spool: built dist/ (${files.length} files)`);
} finally {
  await rm(staging, { recursive: true, force: true });
}
