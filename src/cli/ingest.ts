/**
 * `bun run ingest <file|url> [--title T] [--playback public|signed]`: add a local file, or import
 * an http(s) URL (the same checks and download as `POST /api/videos` with `{"url"}`), to the library
 * through the same pipeline as uploads (probe, then a processing job: faststart, poster) and
 * print its final JSON (after processing). Without --playback the video gets the library's
 * default (DEFAULT_PLAYBACK).
 *
 * SIGINT (Ctrl-C) or SIGTERM cancels: the video this command was adding is removed, row and
 * files, at whatever stage it was (copying, probing, processing, downloading), whatever else the
 * worker had claimed goes back to the queue, and the command exits 130 (143 for SIGTERM).
 */
import { parseArgs } from "node:util";
import { resolve, basename } from "node:path";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { resolveSecrets } from "../server.ts";
import { loadConfigOrExit } from "../load-config.ts";
import { configureLogging } from "../lib/log.ts";
import { openDatabase } from "../db/client.ts";
import { createContext, startWorker, stopWorker } from "../app.ts";
import { toVideoJson } from "../schemas/video.ts";
import { HttpError } from "../http/errors.ts";
import { PLAYBACK_POLICIES, type Playback } from "../db/schema.ts";
import { argsOrExit, orExit } from "../lib/startup.ts";
import { newVideoId } from "../library/ids.ts";

const USAGE = `usage: bun run ingest <file|http(s) URL> [--title T] [--playback ${PLAYBACK_POLICIES.join("|")}]`;

const { values, positionals } = argsOrExit(
  () =>
    parseArgs({
      args: Bun.argv.slice(2),
      options: { title: { type: "string", short: "t" }, playback: { type: "string", short: "p" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
    }),
  USAGE,
);

// Asked for, the usage is the output (stdout, as `bun run worker --help`); a mistake's goes to stderr.
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (positionals.length !== 1) {
  console.error(USAGE);
  process.exit(2);
}

const playback = values.playback;
if (playback !== undefined && !(PLAYBACK_POLICIES as readonly string[]).includes(playback)) {
  console.error(`ingest: --playback must be ${PLAYBACK_POLICIES.join(" or ")}, got ${JSON.stringify(playback)}\n${USAGE}`);
  process.exit(2);
}

const argument = positionals[0]!;
const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(argument);
const source = isUrl ? argument : resolve(argument);
if (!isUrl && !existsSync(source)) {
  console.error(`ingest: no such file: ${source}`);
  process.exit(1);
}
// A directory or a device would reach copyFile and fail there with a raw errno.
const kind = isUrl ? undefined : statSync(source);
if (kind && !kind.isFile()) {
  console.error(`ingest: ${source} is ${kind.isDirectory() ? "a directory" : "not a regular file"}; give a video or audio file`);
  process.exit(1);
}
// A file this user may not read would fail in copyFile, with a raw errno naming a path in tmp/.
if (!isUrl) {
  try {
    accessSync(source, constants.R_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    console.error(`ingest: cannot read ${source} (${code === "EACCES" || code === "EPERM" ? `permission denied to this user (uid ${process.getuid?.()})` : code})`);
    process.exit(1);
  }
}

const base = loadConfigOrExit();
// Standard output is the video's JSON; log lines (a warning about DATA_DIR, the worker's) go to stderr.
configureLogging(base.logLevel ?? "info", base.logFormat, undefined, false, 2);
// One line naming the setting, exit code 2, for a DATA_DIR or a secret it cannot use.
const { config: loaded } = await orExit(resolveSecrets(base));
// The worker this process runs while it waits takes imports and processing, never HLS builds:
// those are long, and belong to the servers' or the separate workers' queue.
const config = { ...loaded, jobKinds: ["ingest", "import"] as const };
const handle = await orExit(openDatabase(config.databaseUrl, { queryTimeoutMs: config.databaseQueryTimeoutMs, poolSize: config.databasePoolSize }));
const ctx = createContext(config, handle);
// Named before its row exists, so that an interruption at any stage knows what to remove.
const videoId = newVideoId();
let interrupted = false;
/**
 * Ctrl-C or SIGTERM: without this the process died where it stood, leaving an `uploading` row
 * listed for days (FAILED_RETENTION_MS), a partial copy in tmp/, or a job held by a dead process
 * until another worker took it over and finished adding a video the user had cancelled.
 */
async function interrupt(signal: "SIGINT" | "SIGTERM"): Promise<void> {
  const code = signal === "SIGINT" ? 130 : 143;
  // A second signal while cleaning up: leave at once.
  if (interrupted) process.exit(code);
  interrupted = true;
  let outcome = "nothing was added";
  /** Stops its job here (the library's remove hook) and deletes its files; the queue row goes with it. */
  const removeVideo = async () => {
    const row = await ctx.library.get(videoId);
    if (row?.status === "ready") outcome = `video ${videoId} had already been added`;
    else if (row) {
      await ctx.library.remove(videoId);
      outcome = `video ${videoId} was removed`;
    }
  };
  try {
    await removeVideo();
    await stopWorker(ctx);
    // Its row may have been written meanwhile (the signal came while it was being inserted).
    if (outcome === "nothing was added") await removeVideo();
  } catch (error) {
    outcome = `video ${videoId} may be left behind (${error instanceof Error ? error.message : String(error)})`;
  }
  // This process's own tmp/ directory: a copy or download cut short is inside.
  await rm(ctx.library.storage.ownTmpDir, { recursive: true, force: true }).catch(() => {});
  await ctx.library.storage.close().catch(() => {});
  await handle.close().catch(() => {});
  console.error(`ingest: interrupted (${signal}); ${outcome}`);
  process.exit(code);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void interrupt(signal));
try {
  await ctx.library.storage.init();
  ctx.ingest.requireTools();
  // This process works the queue while it waits, so a library without a running server or
  // worker still gets its video processed; whatever else it claimed goes back on exit.
  await startWorker(ctx);
  const meta = { id: videoId, title: values.title, playback: playback as Playback | undefined };
  const row = isUrl
    ? ((await ctx.ingest.settled((await ctx.imports.start(source, meta)).id)) ?? { status: "deleted" as const })
    : await ctx.ingest.ingestPath(source, { ...meta, originalFilename: basename(source) });
  // Interrupted meanwhile: `interrupt` says what became of the video, and exits.
  if (!interrupted) {
    if (!("id" in row)) throw new Error("the video was deleted while it was imported");
    console.log(JSON.stringify(toVideoJson(row), null, 2));
    if (row.status !== "ready") process.exitCode = 1;
  }
} catch (error) {
  if (!interrupted) {
    console.error(`ingest: ${error instanceof HttpError ? error.message : String(error)}`);
    process.exitCode = 1;
  }
} finally {
  if (!interrupted) {
    await stopWorker(ctx);
    await ctx.library.storage.close();
    await handle.close();
  }
}
