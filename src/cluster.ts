/**
 * Change relay between `WORKERS` processes. Each serving process caches video metadata (the
 * stream catalog, the HLS file cache) and drops an entry the moment it writes that video; this
 * tells its siblings at once, instead of leaving them to find out when their cache entry ages
 * out (CACHE_TTL_MS). Messages go child → primary → every other child over Bun's IPC channel.
 * On PostgreSQL every process hears every other through the database as well (NOTIFY); the
 * relay stays for SQLite clusters.
 *
 * Only invalidations travel: a relayed change never re-runs the work of a write (queueing an
 * HLS build happens once, in the process that wrote). On SQLite, processes outside the cluster
 * (a CLI ingest, `bun run worker`) are seen through the TTL.
 */
import type { AppContext } from "./app.ts";

export interface ChangeMessage {
  spool: "changed";
  kind: "video";
  id: string;
}

export function isChangeMessage(message: unknown): message is ChangeMessage {
  const m = message as Partial<ChangeMessage> | null;
  return !!m && m.spool === "changed" && m.kind === "video" && typeof m.id === "string";
}

/**
 * Sends this process's own changes with `send`, and returns the function that applies a
 * sibling's change here.
 */
export function relayChanges(ctx: AppContext, send: (message: ChangeMessage) => void): (message: ChangeMessage) => void {
  let applying = false;
  const out = (kind: ChangeMessage["kind"]) => (id: string) => {
    if (!applying) send({ spool: "changed", kind, id });
  };
  ctx.library.events.on("changed", out("video"));
  return (message) => {
    // Emitted synchronously: the flag keeps a relayed HLS change from being sent back out.
    applying = true;
    try {
      ctx.library.events.emit("invalidated", message.id);
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
