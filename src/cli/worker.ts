/**
 * `bun run worker`: the HLS transcode worker on its own, against the same DATA_DIR and database
 * as the server, so transcoding can move off the streaming machine (run the server with
 * TRANSCODE_IN_SERVER=0). Any number of workers may run; each takes up to
 * TRANSCODE_CONCURRENCY jobs at a time. SIGINT/SIGTERM stop it cleanly: a running transcode is
 * killed and handed back to the queue.
 */
import { configureLogging } from "../lib/log.ts";
import { parseArgs } from "node:util";
import { resolveSecrets } from "../server.ts";
import { loadConfigOrExit, transcodeConfig } from "../config.ts";
import { openDatabase } from "../db/client.ts";
import { createContext } from "../app.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { help: { type: "boolean", short: "h" } },
});
if (values.help) {
  console.log("usage: bun run worker   (configuration from the environment: DATA_DIR, DATABASE_URL, TRANSCODE_*)");
  process.exit(0);
}

const { config } = await resolveSecrets(loadConfigOrExit());
configureLogging(config.logLevel ?? "info", config.logFormat);
const handle = openDatabase(config.databaseUrl);
const ctx = createContext(config, handle.db);
await ctx.library.storage.init();
const worker = ctx.hls.startWorker(ctx.media);
if (!worker) {
  await ctx.library.storage.close();
  handle.close();
  process.exit(1);
}
const settings = transcodeConfig(config);
console.log(`[hls] worker ${worker.id} started (concurrency ${settings.concurrency}, data: ${config.dataDir})`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    console.log(`[hls] ${signal}: stopping`);
    await ctx.hls.stopWorker();
    await ctx.library.storage.close();
    handle.close();
    process.exit(0);
  });
}
