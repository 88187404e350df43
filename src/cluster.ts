/**
 * What `WORKERS` processes pass each other: a child's configuration at start, changes, and metrics.
 *
 * Changes: each serving process caches video metadata (the stream catalog, the HLS file cache)
 * and drops an entry the moment it writes that video; the relay tells its siblings at once,
 * instead of leaving them to find out when their cache entry ages out (CACHE_TTL_MS). Messages
 * go child → primary → every other child over Bun's IPC channel.
 * On PostgreSQL every process hears every other through the database as well (NOTIFY); the
 * relay stays for SQLite clusters.
 *
 * Only invalidations travel, and (on SQLite) URL imports' download progress for the siblings'
 * event streams: a relayed change never re-runs the work of a write (queueing an HLS build
 * happens once, in the process that wrote). On SQLite, processes outside the cluster (a CLI
 * ingest, `bun run worker`) are seen through the TTL, and their download progress not at all.
 */
import type { AppContext } from "./app.ts";
import type { Config } from "./config.ts";
import { isImportProgress, type ImportProgress } from "./modules/imports/service.ts";

/**
 * The configuration a WORKERS child is started with: its primary's, read and checked from the
 * environment once, as JSON. A child therefore never loads src/env.ts's TypeBox schemas, which
 * would cost a process that may only ever stream about 3.5 MiB and 2.7k live objects for
 * every full collection to mark (issue 15; bench/heap.ts --child).
 */
export const WORKER_CONFIG_VARIABLE = "SPOOL_WORKER_CONFIG";

/**
 * The config the primary gave this process, taken out of its environment (nothing this process
 * starts inherits it); undefined when none was given (a child started by hand with
 * SPOOL_WORKER_ID alone reads the environment as a primary does).
 */
export function configFromPrimary(): Config | undefined {
  const given = process.env[WORKER_CONFIG_VARIABLE];
  if (!given) return undefined;
  delete process.env[WORKER_CONFIG_VARIABLE];
  return JSON.parse(given) as Config;
}

export interface ChangeMessage {
  spool: "changed";
  kind: "video";
  id: string;
}

/** A URL import's download progress, run by this process's worker, for the siblings' event streams. */
export interface ProgressMessage {
  spool: "import";
  event: ImportProgress;
}

export type RelayMessage = ChangeMessage | ProgressMessage;

export function isChangeMessage(message: unknown): message is ChangeMessage {
  const m = message as Partial<ChangeMessage> | null;
  return !!m && m.spool === "changed" && m.kind === "video" && typeof m.id === "string";
}

export function isRelayMessage(message: unknown): message is RelayMessage {
  const m = message as Partial<ProgressMessage> | null;
  return isChangeMessage(message) || (!!m && m.spool === "import" && isImportProgress(m.event));
}

/**
 * Sends this process's own changes (and, on SQLite, its imports' download progress: PostgreSQL
 * carries that to every process itself) with `send`, and returns the function that applies a
 * sibling's message here.
 */
export function relayChanges(ctx: AppContext, send: (message: RelayMessage) => void): (message: RelayMessage) => void {
  let applying = false;
  const out = (kind: ChangeMessage["kind"]) => (id: string) => {
    if (!applying) send({ spool: "changed", kind, id });
  };
  ctx.library.events.on("changed", out("video"));
  if (ctx.db.dialect === "sqlite") {
    ctx.imports.events.on("progress", (event: ImportProgress) => {
      if (!applying) send({ spool: "import", event });
    });
  }
  return (message) => {
    // Emitted synchronously: the flag keeps a relayed message from being sent back out.
    applying = true;
    try {
      if (message.spool === "changed") ctx.library.events.emit("invalidated", message.id);
      else ctx.imports.events.emit("progress", message.event);
    } finally {
      applying = false;
    }
  };
}

/**
 * Metrics across the cluster: each process has its own registry, and a scrape reaches one
 * process at random (SO_REUSEPORT), so the process that is asked collects everyone's numbers
 * through the primary and answers their sum (prom-client's AggregatorRegistry).
 */
export interface MetricsRequest {
  spool: "metrics?";
  nonce: string;
}

export interface MetricsReply {
  spool: "metrics";
  nonce: string;
  /** One process's `registry.getMetricsAsJSON()`, or (primary → asker) the summed text. */
  json?: unknown[];
  text?: string;
}

export function isMetricsRequest(message: unknown): message is MetricsRequest {
  const m = message as Partial<MetricsRequest> | null;
  return !!m && m.spool === "metrics?" && typeof m.nonce === "string";
}

export function isMetricsReply(message: unknown): message is MetricsReply {
  const m = message as Partial<MetricsReply> | null;
  return !!m && m.spool === "metrics" && typeof m.nonce === "string";
}
