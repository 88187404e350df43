/** `bun src/index.ts`: run Spool with configuration from the environment. */
import { loadConfig } from "./config.ts";
import { DEMO_VIDEO_ID, startSpool } from "./server.ts";

const config = loadConfig();
const spool = await startSpool(config);
console.log(`Spool listening on ${spool.url} (data: ${config.dataDir})`);
if (config.seedDemo) console.log(`Demo video: ${spool.url}/api/stream/${DEMO_VIDEO_ID}`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    await spool.stop();
    process.exit(0);
  });
}
