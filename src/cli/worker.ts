/**
 * `bun run worker`: a worker on its own, against the same database and storage as the servers
 * (the same DATABASE_URL; the same DATA_DIR, shared over the network, between machines), so
 * background work moves off the streaming machines (run the servers with
 * TRANSCODE_IN_SERVER=0). It claims every kind of job: processing of new uploads and HLS builds.
 * Any number of workers may run; each takes up to TRANSCODE_CONCURRENCY transcodes (and two
 * processing jobs) at a time. SIGINT/SIGTERM stop it cleanly: running jobs are stopped and
 * handed back to the queue.
 */
import { configureLogging } from "../lib/log.ts";
import { parseArgs } from "node:util";
import { resolveSecrets } from "../server.ts";
import { loadConfigOrExit, transcodeConfig } from "../config.ts";
import { openDatabase } from "../db/client.ts";
import { createContext, startWorker, stopWorker } from "../app.ts";
import { orExit } from "../lib/startup.ts";

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
const handle = await orExit(openDatabase(config.databaseUrl, { queryTimeoutMs: config.databaseQueryTimeoutMs }));
const ctx = createContext(config, handle);
await ctx.library.storage.init();
const worker = await startWorker(ctx);
if (!worker) {
  await ctx.library.storage.close();
  await handle.close();
  process.exit(1);
}
const settings = transcodeConfig(config);
console.log(`[worker] ${worker.id} started (${worker.kinds.join(", ")}; transcode concurrency ${settings.concurrency}; database: ${handle.dialect}; data: ${config.dataDir})`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    console.log(`[worker] ${signal}: stopping`);
    await stopWorker(ctx);
    await ctx.library.storage.close();
    await handle.close();
    process.exit(0);
  });
}
