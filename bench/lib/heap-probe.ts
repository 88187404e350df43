/**
 * Preloaded into a Spool process by bench/heap.ts (`bun --preload bench/lib/heap-probe.ts
 * src/index.ts`): on SIGUSR2 it writes what the process holds to $SPOOL_HEAP_PROBE_OUT as JSON.
 * Not part of Spool; nothing in src/ knows about it.
 *
 * What it reports, and what each figure means:
 * - `rss`: VmRSS (process.memoryUsage().rss), the figure the bench's slow-reader table sums;
 *   `rssAfterGc` the same after the forced collections below.
 * - `anon`/`file`: that RSS split (/proc/self/smaps_rollup): private memory, and file-backed
 *   pages, almost all of them the bun executable's own code and data (shared by every process
 *   that runs the same binary, so a WORKERS cluster holds them once, though each process's RSS
 *   counts them).
 * - `heap`/`objects`: JSC's live heap after a full collection (bun:jsc heapStats()).
 * - `modules`: entries in Bun's module registry (require.cache holds ES modules too), by package;
 *   `paths` lists them all (test/integration/lazy-modules.test.ts reads it).
 * - `fullGcMs`: wall time of a forced synchronous full collection (`Bun.gc(true)`, median of 3):
 *   marking the whole live heap plus sweeping, on this thread. It is what a full collection costs
 *   this process, not how JSC schedules its own (mostly concurrent) collections.
 * - `gaps`: event-loop stalls since the previous report, from a 2 ms repeating timer: how late
 *   each tick fired (ms). Under load this is the time the serving thread was busy in one go:
 *   request work, GC pauses and scheduling noise alike (this VM's other tenants too); the
 *   `over10`/`over20` counts and the max are the figures to compare, in the same conditions.
 */
import { heapStats } from "bun:jsc";
import { readFileSync, renameSync, writeFileSync } from "node:fs";

/** Where to write; `%p` stands for this process's id (a WORKERS child inherits the variable). */
const out = process.env.SPOOL_HEAP_PROBE_OUT?.replaceAll("%p", String(process.pid));
const TICK_MS = 2;
let late: number[] = [];
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  late.push(Math.max(0, now - last - TICK_MS));
  last = now;
}, TICK_MS).unref();

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0;
}

/** kB fields of /proc/self/smaps_rollup, in bytes. */
function rollup(): Record<string, number> {
  const fields: Record<string, number> = {};
  try {
    for (const m of readFileSync("/proc/self/smaps_rollup", "utf8").matchAll(/^(\w+):\s+(\d+) kB/gm)) fields[m[1]!] = Number(m[2]) * 1024;
  } catch {
    // not Linux
  }
  return fields;
}

function report(): Record<string, unknown> {
  const rssBefore = process.memoryUsage().rss;
  const split = rollup();
  const gaps = late.sort((a, b) => a - b);
  late = [];
  const gc: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    Bun.gc(true);
    gc.push(performance.now() - t);
  }
  gc.sort((a, b) => a - b);
  const stats = heapStats();
  const keys = Object.keys(require.cache);
  const byPackage: Record<string, number> = {};
  for (const key of keys) {
    const m = key.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
    const name = m ? m[1]! : key.includes("/src/") ? "src" : "other";
    byPackage[name] = (byPackage[name] ?? 0) + 1;
  }
  const topTypes = Object.entries(stats.objectTypeCounts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8);
  return {
    rss: rssBefore,
    rssAfterGc: process.memoryUsage().rss,
    anon: split.Anonymous ?? 0,
    file: (split.Rss ?? 0) - (split.Anonymous ?? 0),
    heap: stats.heapSize,
    objects: stats.objectCount,
    topTypes: Object.fromEntries(topTypes),
    modules: keys.length,
    byPackage,
    paths: keys,
    srcModules: keys.filter((k) => k.includes("/src/")).map((k) => k.slice(k.indexOf("/src/") + 1)).sort(),
    fullGcMs: gc[1],
    gaps: {
      ticks: gaps.length,
      p50: percentile(gaps, 50),
      p99: percentile(gaps, 99),
      max: gaps.at(-1) ?? 0,
      over10: gaps.filter((g) => g > 10).length,
      over20: gaps.filter((g) => g > 20).length,
    },
  };
}

process.on("SIGUSR2", () => {
  if (!out) return;
  // Whole or not at all: the reader polls for the file.
  writeFileSync(`${out}.tmp`, JSON.stringify(report()));
  renameSync(`${out}.tmp`, out);
});
