/**
 * `bun run worker`: a worker on its own, against the same database and storage as the servers
 * (the same DATABASE_URL; the same DATA_DIR, shared over the network, between machines), so
 * background work moves off the streaming machines (run the servers with
 * TRANSCODE_IN_SERVER=0). It claims every kind of job: processing of new uploads and HLS builds.
 * Any number of workers may run; each takes up to TRANSCODE_CONCURRENCY transcodes (and two
 * processing jobs) at a time. SIGINT/SIGTERM stop it cleanly: running jobs are stopped and
 * handed back to the queue.
 */
import { configureLogging, flushLogs, logger } from "../lib/log.ts";
import { parseArgs } from "node:util";
import { resolveSecrets } from "../server.ts";
import { transcodeConfig } from "../config.ts";
import { loadConfigOrExit } from "../load-config.ts";
import { openDatabase } from "../db/client.ts";
import { createContext, startWorker, stopWorker } from "../app.ts";
import { argsOrExit, orExit } from "../lib/startup.ts";
import { LocalHousekeeping } from "../library/housekeeping.ts";

const USAGE = "usage: bun run worker   (configuration from the environment: DATA_DIR, DATABASE_URL, TRANSCODE_*)";

const { values } = argsOrExit(
  () =>
    parseArgs({
      args: Bun.argv.slice(2),
      options: { help: { type: "boolean", short: "h" } },
    }),
  USAGE,
);
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const base = loadConfigOrExit();
// Configured first, so that every line (a warning about DATA_DIR too) follows LOG_FORMAT.
configureLogging(base.logLevel ?? "info", base.logFormat);
const log = logger("worker");
// One line naming the setting, exit code 2, for a DATA_DIR, a secret or a database it cannot use.
const { config } = await orExit(resolveSecrets(base));
const handle = await orExit(openDatabase(config.databaseUrl, { queryTimeoutMs: config.databaseQueryTimeoutMs, poolSize: config.databasePoolSize }));
const ctx = createContext(config, handle);
// Every job a worker runs needs them: say so and stop, rather than log that jobs "wait for a
// worker" (this one) and exit 1 without a word about why.
if (!ctx.media) {
  await handle.close();
  console.error(`spool: a worker needs ffmpeg and ffprobe, which were not found (FFMPEG_PATH=${config.ffmpegPath ?? "ffmpeg"}, FFPROBE_PATH=${config.ffprobePath ?? "ffprobe"}): install ffmpeg, or set FFMPEG_PATH and FFPROBE_PATH`);
  process.exit(1);
}
// A worker with a DATA_DIR of its own (STORAGE=s3, another machine) is the only process that
// cleans it: what a killed run left in tmp/ (a source copy and a partial ladder per transcode)
// and, with a bucket, the working copies of videos processed or deleted since. Without this,
// each crash of a worker left them there for ever (a server's primary sweeps only its own DATA_DIR).
await ctx.library.storage.init(true);
const worker = await startWorker(ctx);
// Uploads are never accepted here: nothing to share with the bucket (`ingestsHere`).
const housekeeping = new LocalHousekeeping(ctx.library, () => true);
if (worker) housekeeping.start();
if (!worker) {
  await ctx.library.storage.close();
  await handle.close();
  process.exit(1);
}
const settings = transcodeConfig(config);
log.info(
  { worker: worker.id, kinds: worker.kinds, concurrency: settings.concurrency, database: handle.dialect, dataDir: config.dataDir },
  `worker ${worker.id} started (${worker.kinds.join(", ")}; transcode concurrency ${settings.concurrency}; database: ${handle.dialect}; data: ${config.dataDir})`,
);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `${signal}: stopping`);
    housekeeping.stop();
    await stopWorker(ctx);
    await ctx.library.storage.close();
    await handle.close();
    log.info("stopped");
    flushLogs();
    process.exit(0);
  });
}
