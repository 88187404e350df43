/**
 * `bun src/index.ts`: run Spool with configuration from the environment.
 *
 * With WORKERS > 1 (default: one per core) this process is the primary: it prepares the data
 * directory, listens, and starts WORKERS-1 serving processes on the same port (SO_REUSEPORT).
 * They tell each other what they change over IPC (src/cluster.ts), so no cache lags behind.
 */
import { isChangeMessage, relayChanges, type ChangeMessage } from "./cluster.ts";
import { loadConfigOrExit } from "./config.ts";
import { DEMO_VIDEO_ID, startSpool } from "./server.ts";

const config = loadConfigOrExit();
const workerId = process.env.SPOOL_WORKER_ID;
const spool = await startSpool(config, { primary: workerId === undefined });

const children: ReturnType<typeof Bun.spawn>[] = [];
let stopping = false;

/** The primary passes a child's change to every other child, and applies it itself. */
function broadcast(message: ChangeMessage, from?: ReturnType<typeof Bun.spawn>): void {
  for (const child of children) {
    if (child && child !== from && !child.killed && child.exitCode === null) {
      try {
        child.send(message);
      } catch {
        // exiting; it is restarted with an empty cache
      }
    }
  }
}
/** A child tells the primary. A closed channel (the primary is exiting) must not fail the write. */
function tellPrimary(message: ChangeMessage): void {
  try {
    process.send?.(message);
  } catch {
    // shutting down
  }
}
const applyChange = relayChanges(spool.ctx, (message) => (workerId === undefined ? broadcast(message) : tellPrimary(message)));
if (workerId !== undefined) {
  process.on("message", (message: unknown) => {
    if (isChangeMessage(message)) applyChange(message);
  });
}

function spawnWorker(id: number): void {
  const child: ReturnType<typeof Bun.spawn> = Bun.spawn([process.execPath, import.meta.path], {
    env: { ...process.env, SPOOL_WORKER_ID: String(id) },
    stdio: ["ignore", "inherit", "inherit"],
    ipc(message) {
      if (!isChangeMessage(message)) return;
      applyChange(message);
      broadcast(message, child);
    },
    onExit(_proc, code, signal) {
      if (stopping) return;
      console.error(`[spool] worker ${id} exited (${signal ?? code}); restarting it`);
      // The shutdown may have begun during the pause: never start a worker it already passed.
      setTimeout(() => {
        if (!stopping) spawnWorker(id);
      }, 1000);
    },
  });
  children[id - 1] = child;
}

if (workerId !== undefined) console.log(`[spool] worker ${workerId} serving on ${spool.url}`);
else {
  for (let id = 1; id < config.workers; id++) spawnWorker(id);
  console.log(`Spool listening on ${spool.url} (data: ${config.dataDir}, ${config.workers} worker${config.workers > 1 ? "s" : ""})`);
  console.log(spool.apiKeyNotice);
  if (config.seedDemo) console.log(`Demo video: ${spool.url}/api/stream/${DEMO_VIDEO_ID}`);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    for (const child of children) child?.kill("SIGTERM");
    await Promise.all(children.map((child) => child?.exited));
    await spool.stop();
    process.exit(0);
  });
}
