/**
 * `bun src/index.ts`: run Spool with configuration from the environment.
 *
 * With WORKERS > 1 (default: one per core) this process is the primary: it prepares the data
 * directory, listens, and starts WORKERS-1 serving processes on the same port (SO_REUSEPORT).
 * They tell each other what they change over IPC (src/cluster.ts), so no cache lags behind.
 *
 * Lifecycle: SIGTERM/SIGINT drain every process (SHUTDOWN_GRACE_MS) and exit 0. A worker whose
 * primary is gone, however it died, stops within a second: it must not keep serving a port
 * that a restarted cluster will bind again.
 */
import { AggregatorRegistry } from "./metrics/prom-client.ts";
import { configFromPrimary, isMetricsReply, isMetricsRequest, isRelayMessage, relayChanges, WORKER_CONFIG_VARIABLE, type MetricsReply, type RelayMessage } from "./cluster.ts";
import { registry } from "./metrics/metrics.ts";
import { configureLogging, errorFields, flushLogs, logger } from "./lib/log.ts";
import { DEMO_VIDEO_ID, startSpool, type RunningSpool } from "./server.ts";
import { argsOrExit, orExit } from "./lib/startup.ts";
import { redactUrl } from "./db/url.ts";
import { parseArgs } from "node:util";

const workerId = process.env.SPOOL_WORKER_ID;
const isPrimary = workerId === undefined;

const USAGE = "usage: npm start (the bundle) | npm run dev | bun src/index.ts   (no options: configuration from the environment, PORT, HOST, DATA_DIR, DATABASE_URL...; see README, Configuration)";
if (isPrimary) {
  // Spool takes no options: `npm start -- --help` or `--port 8080` must not start a server on
  // the defaults (every address, port 3000, ./data) as if nothing had been said.
  const { values } = argsOrExit(() => parseArgs({ args: Bun.argv.slice(2), options: { help: { type: "boolean", short: "h" } } }), USAGE);
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
}
// Loaded only when read here: a WORKERS child is given its primary's (src/cluster.ts).
const config = (isPrimary ? undefined : configFromPrimary()) ?? (await import("./load-config.ts")).loadConfigOrExit();
configureLogging(config.logLevel ?? "info", config.logFormat, undefined, true);
const log = logger("spool");

// One line, no stack, for what only shows when Spool tries: a HOST or port it cannot listen on,
// a PostgreSQL it cannot reach.
const spool: RunningSpool = await orExit(startSpool(config, { primary: isPrimary }));

const children: ReturnType<typeof Bun.spawn>[] = [];
let stopping = false;

/** The primary passes a child's change to every other child, and applies it itself. */
function broadcast(message: RelayMessage, from?: ReturnType<typeof Bun.spawn>): void {
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
function tellPrimary(message: RelayMessage): void {
  try {
    process.send?.(message);
  } catch {
    // shutting down
  }
}
const applyChange = relayChanges(spool.ctx, (message) => (isPrimary ? broadcast(message) : tellPrimary(message)));

// --- metrics across the cluster (see src/cluster.ts) ---

/** Replies awaited by nonce: a child's registry (primary side), or the sum (child side). */
const awaiting = new Map<string, (reply: MetricsReply) => void>();
/**
 * How long the primary waits for each child's registry. A scraped child waits longer for the
 * primary's sum, since that sum itself waits for the children: with equal waits a child slowed
 * down by load would give up on the primary just before the sum arrived, and answer alone.
 */
const CHILD_REGISTRY_WAIT_MS = 2000;
const CLUSTER_SUM_WAIT_MS = CHILD_REGISTRY_WAIT_MS + 1000;

function awaitReply(nonce: string, waitMs: number, send: () => void): Promise<MetricsReply | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      awaiting.delete(nonce);
      resolve(null);
    }, waitMs);
    awaiting.set(nonce, (reply) => {
      clearTimeout(timer);
      awaiting.delete(nonce);
      resolve(reply);
    });
    try {
      send();
    } catch {
      clearTimeout(timer);
      awaiting.delete(nonce);
      resolve(null);
    }
  });
}

/** Primary: every live process's registry, summed. A child that does not answer in time is left out. */
async function clusterMetrics(): Promise<string> {
  const own = await registry.getMetricsAsJSON();
  const replies = await Promise.all(
    children.filter((c) => c && c.exitCode === null && !c.killed).map((child) => {
      const nonce = crypto.randomUUID();
      return awaitReply(nonce, CHILD_REGISTRY_WAIT_MS, () => child.send({ spool: "metrics?", nonce }));
    }),
  );
  const all = [own, ...replies.flatMap((r) => (r?.json ? [r.json] : []))];
  return AggregatorRegistry.aggregate(all as never).metrics();
}

function onPrimaryMessage(child: ReturnType<typeof Bun.spawn>, message: unknown): void {
  if (isRelayMessage(message)) {
    applyChange(message);
    broadcast(message, child);
  } else if (isMetricsReply(message)) {
    awaiting.get(message.nonce)?.(message);
  } else if (isMetricsRequest(message)) {
    // A child was scraped: it gets everyone's sum.
    void clusterMetrics().then((text) => {
      try {
        child.send({ spool: "metrics", nonce: message.nonce, text } satisfies MetricsReply);
      } catch {
        // the child is exiting
      }
    });
  }
}

/**
 * A child that dies within this long of its start is in a crash loop (its start-up fails: the
 * database refuses more connections, say): each restart waits twice as long as the one before,
 * up to RESTART_MAX_MS, instead of one a second for ever. One that ran longer restarts after 1 s.
 */
const CRASH_LOOP_MS = 10_000;
const RESTART_MAX_MS = 60_000;
const restartDelays = new Map<number, number>();

function spawnWorker(id: number): void {
  const startedAt = Date.now();
  const child: ReturnType<typeof Bun.spawn> = Bun.spawn([process.execPath, import.meta.path], {
    env: { ...process.env, SPOOL_WORKER_ID: String(id), [WORKER_CONFIG_VARIABLE]: JSON.stringify(config) },
    stdio: ["ignore", "inherit", "inherit"],
    ipc(message) {
      onPrimaryMessage(child, message);
    },
    onExit(_proc, code, signal) {
      if (stopping) return;
      const looping = Date.now() - startedAt < CRASH_LOOP_MS;
      const delayMs = looping ? Math.min(RESTART_MAX_MS, 2 * (restartDelays.get(id) ?? 500)) : 1000;
      restartDelays.set(id, delayMs);
      log.error({ worker: id, code, signal, restartInMs: delayMs }, "worker exited; restarting it");
      void spool.receiverExited();
      // The shutdown may have begun during the pause: never start a worker it already passed.
      setTimeout(() => {
        if (!stopping) spawnWorker(id);
      }, delayMs);
    },
  });
  children[id - 1] = child;
}

/** When the first signal came: a second one later than this after it stops at once. */
let signalledAt: number | undefined;
/**
 * A second Ctrl-C (or SIGTERM) more than a second after the first: the operator will not wait
 * out SHUTDOWN_GRACE_MS for a download in flight. Within the second it is the same keypress
 * delivered twice (npm passes its terminal's SIGINT on to the process group it already reached).
 */
const FORCE_AFTER_MS = 1000;

function signalled(signal: "SIGINT" | "SIGTERM"): void {
  const now = Date.now();
  if (signalledAt !== undefined && now - signalledAt >= FORCE_AFTER_MS) {
    log.warn({ signal }, "second signal: stopping now, without waiting for the requests in flight");
    flushLogs();
    for (const child of children) child?.kill("SIGTERM");
    // A transcode cut short here is taken up again once its lease runs out (TRANSCODE_STALE_MS).
    process.exit(signal === "SIGINT" ? 130 : 143);
  }
  signalledAt ??= now;
  void shutdown(signal, config.shutdownGraceMs ?? 30_000);
}

async function shutdown(reason: string, graceMs: number): Promise<never> {
  if (stopping) return new Promise<never>(() => {});
  stopping = true;
  log.info({ reason, graceMs }, "shutting down: draining requests in flight");
  flushLogs();
  // Every process drains at the same time, each with the full grace period.
  for (const child of children) child?.kill("SIGTERM");
  await Promise.all([spool.stop({ graceMs }), ...children.map((child) => child?.exited)]);
  log.info("stopped");
  process.exit(0);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => signalled(signal));

if (!isPrimary) {
  process.on("message", (message: unknown) => {
    if (isRelayMessage(message)) applyChange(message);
    else if (isMetricsRequest(message)) {
      void registry.getMetricsAsJSON().then((json) => {
        try {
          process.send?.({ spool: "metrics", nonce: message.nonce, json } satisfies MetricsReply);
        } catch {
          // the primary is gone
        }
      });
    } else if (isMetricsReply(message)) awaiting.get(message.nonce)?.(message);
  });
  // Scraped here: ask the primary for the cluster's sum; alone if it does not answer.
  spool.ctx.metrics.collect = async () => {
    const nonce = crypto.randomUUID();
    const reply = await awaitReply(nonce, CLUSTER_SUM_WAIT_MS, () => process.send?.({ spool: "metrics?", nonce }));
    return reply?.text ?? registry.metrics();
  };
  // The primary died (kill -9, OOM): its IPC channel closes, or this process is re-parented.
  // Either way this worker leaves the port at once, finishing what it is sending for a second.
  const parent = process.ppid;
  const orphaned = () => void shutdown("the primary process is gone", 1000);
  process.on("disconnect", orphaned);
  setInterval(() => {
    if (process.ppid !== parent) orphaned();
  }, 500).unref();
  log.info({ worker: workerId, url: spool.url }, `worker ${workerId} serving on ${spool.url}`);
} else {
  for (let id = 1; id < config.workers; id++) spawnWorker(id);
  if (config.workers > 1) spool.ctx.metrics.collect = clusterMetrics;
  // Which database: a server on the wrong one shows an empty library (src/library/ownership.ts).
  log.info({ url: spool.url, dataDir: config.dataDir, database: redactUrl(config.databaseUrl), workers: config.workers }, `Spool listening on ${spool.url}`);
  log.info(spool.apiKeyNotice);
  if (config.seedDemo) log.info(`Demo video: ${spool.url}/api/stream/${DEMO_VIDEO_ID}`);
}
// Start-up lines go out now, not with the first 4 KiB of request lines.
flushLogs();

process.on("unhandledRejection", (error) => log.error(errorFields(error), "unhandled rejection"));
