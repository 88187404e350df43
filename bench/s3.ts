/**
 * A targeted measurement of STORAGE=s3 (issue 12), apart from the suite (bench/run.ts): Spool
 * serving the bench's main video from DATA_DIR, then from a bucket (s3rver on loopback, the one
 * the tests use) through the block cache, hot (every block cached) and cold (CACHE_MAX_BYTES at
 * its minimum, 4 blocks of 2 MiB, so random ranges over the 79 MiB file nearly always miss and
 * fetch a block from the bucket). Same video, same wrk scripts and generator as the suite, run
 * back to back in one process; ratios are to local in this run.
 *
 *   bun bench/s3.ts [--duration=5] [--connections=16]
 *
 * Why not rows of bench/run.ts yet: the suite's targets share one start-up (ingest with the
 * CLI, then the server bundle, as `npm start` runs it), and an s3 target also needs the bucket started first and a
 * warm-up step; see bench/README.md ("Object storage").
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startS3rver } from "../test/helpers/s3.ts";
import { promValue } from "./lib/checks.ts";
import { processTree, treeCpuTicks } from "./lib/rss.ts";
import { runLoad, type LoadResult } from "./lib/load.ts";
import { CACHE_DIR, LOOPBACK, MiB, REPO_ROOT, SERVER_CORE, freePort, spoolEntry, pinned, run, spawnTracked, stopTracked, waitForHttp, which } from "./lib/util.ts";

const { values } = parseArgs({ args: Bun.argv.slice(2), options: { duration: { type: "string", default: "5" }, connections: { type: "string", default: "16" } } });
const durationS = Number(values.duration);
const connections = Number(values.connections);
const BUN = process.execPath;
const API_KEY = "spool-bench-api-key-0123456789abcdef";
const MAIN = resolve(CACHE_DIR, "media/spool-bench-720p.mp4");

if (!existsSync(MAIN)) {
  console.error(`${MAIN} is missing: run bun bench/run.ts --smoke once to make the bench media`);
  process.exit(1);
}
const generator = which("wrk") ? "wrk" : "autocannon";
const size = Bun.file(MAIN).size;
const tmp = mkdtempSync(join(tmpdir(), "spool-bench-s3-"));
const s3 = await startS3rver();

function env(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return { NODE_ENV: "production", HOST: LOOPBACK, DATA_DIR: dataDir, SEED_DEMO: "0", WORKERS: "1", TRANSCODE_IN_SERVER: "0", API_KEY, METRICS: "1", LOG_LEVEL: "warn", ...extra };
}

async function ingest(dataDir: string, e: Record<string, string>): Promise<string> {
  mkdirSync(dataDir, { recursive: true });
  const r = await run([BUN, resolve(REPO_ROOT, "src/cli/ingest.ts"), MAIN, "--title", "bench main", "--playback", "public"], { env: e, timeoutMs: 600_000, name: "ingest" });
  const id = /"id"\s*:\s*"([^"]+)"/.exec(r.stdout)?.[1];
  if (r.code !== 0 || !id) throw new Error(`ingest failed (${r.code}): ${(r.stderr || r.stdout).slice(-1000)}`);
  return id;
}

/** Random 64 KiB ranges within this much of the file's start: a hot set the default 32 MiB RAM tier holds. */
const HOT_REGION = 16 * MiB;

/**
 * Asks every 256 KiB block of the hot region a few times (the RAM tier admits a block asked for
 * twice, at most 4 fills at once), so the `hot64k` row measures answers from memory where the
 * tier fronts the storage.
 */
async function warmHotRegion(baseUrl: string, path: string): Promise<void> {
  for (let pass = 0; pass < 4; pass++) {
    for (let at = 0; at < HOT_REGION; at += 256 * 1024) {
      await fetch(`${baseUrl}${path}`, { headers: { range: `bytes=${at}-${at + 9}` } }).then((r) => r.arrayBuffer());
      if (at % (1024 * 1024) === 0) await Bun.sleep(5);
    }
    await Bun.sleep(300);
  }
}

/** The RAM tier's and the disk block cache's counters (/metrics). */
async function tiers(baseUrl: string) {
  const text = await (await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })).text();
  const lookups = (cache: string, result: string) => promValue(text, "spool_cache_lookups_total", { cache, result }) ?? 0;
  return {
    memoryHit: lookups("memory_tier", "hit"),
    memoryMiss: lookups("memory_tier", "miss"),
    diskHit: lookups("disk_blocks", "hit"),
    diskMiss: lookups("disk_blocks", "miss"),
    bucket: promValue(text, "spool_bucket_block_reads_total") ?? 0,
    held: promValue(text, "spool_memory_tier_bytes") ?? 0,
  };
}

async function measure(label: string, e: Record<string, string>, path: string, warm: boolean): Promise<Record<string, LoadResult & { cpuUs?: number }>> {
  const port = await freePort();
  const server = spawnTracked(label, pinned(SERVER_CORE, [BUN, spoolEntry()]), { env: { ...e, PORT: String(port) }, stdout: "ignore", stderr: "ignore" });
  const baseUrl = `http://${LOOPBACK}:${port}`;
  try {
    if (!(await waitForHttp(`${baseUrl}/health`, 30_000))) throw new Error(`${label} did not start`);
    const first = await fetch(`${baseUrl}${path}`);
    const got = (await first.arrayBuffer()).byteLength;
    if (first.status !== 200 || got !== size) throw new Error(`${label}: GET gave ${first.status} with ${got} bytes, expected ${size}`);
    if (!warm) {
      // Cold: that GET filled the (4-block) cache with the file's tail; empty it again.
      await fetch(`${baseUrl}${path}`, { headers: { range: "bytes=0-0" } }).then((r) => r.arrayBuffer());
    }
    const range64k = await runLoad(generator, { kind: "ranges", baseUrl, path, fileSize: size, rangeLen: 64 * 1024, seed: 7, connections, durationS });
    const whole = await runLoad(generator, { kind: "fixed", baseUrl, path, connections: 4, durationS });
    if (!warm) return { range64k, whole };
    await warmHotRegion(baseUrl, path);
    const before = await tiers(baseUrl);
    // The server's CPU time per answer too (what a noisy shared machine disturbs least).
    const cpu = async (load: Promise<LoadResult>): Promise<LoadResult & { cpuUs: number }> => {
      const pids = processTree(server.proc.pid);
      const ticks = treeCpuTicks(pids);
      const result = await load;
      return { ...result, cpuUs: ((treeCpuTicks(pids) - ticks) * 10_000) / Math.max(1, result.requests) };
    };
    const hot64k = await cpu(runLoad(generator, { kind: "ranges", baseUrl, path, fileSize: HOT_REGION, rangeLen: 64 * 1024, seed: 11, connections, durationS }));
    const probe = await cpu(runLoad(generator, { kind: "fixed", baseUrl, path, headers: { Range: "bytes=0-1" }, connections, durationS }));
    const after = await tiers(baseUrl);
    const delta = (name: keyof typeof after) => after[name] - before[name];
    // Where the hot rows' answers came from (the tier's layering, from /metrics).
    console.log(
      `${label}, hot 64 KiB and probe rows: RAM tier ${delta("memoryHit")} hits / ${delta("memoryMiss")} misses, disk blocks ${delta("diskHit")} hits / ${delta("diskMiss")} misses, bucket block GETs ${delta("bucket")}, tier holds ${(after.held / MiB).toFixed(1)} MiB`,
    );
    return { range64k, whole, hot64k, probe };
  } finally {
    await stopTracked(server);
  }
}

try {
  const localDir = join(tmp, "local");
  const s3Dir = join(tmp, "s3");
  const s3Env = (cacheDir: string, maxBytes: number) => env(s3Dir, { STORAGE: "s3", ...s3.env, CACHE_DIR: cacheDir, CACHE_MAX_BYTES: String(maxBytes) });
  const localId = await ingest(localDir, env(localDir));
  const s3Id = await ingest(s3Dir, s3Env(join(s3Dir, "cache-ingest"), 1024 * MiB));
  if (which("sync")) await run(["sync"], { timeoutMs: 120_000 });
  const rows: [string, Record<string, LoadResult & { cpuUs?: number }>][] = [];
  rows.push(["local", await measure("local", env(localDir), `/api/stream/${localId}`, true)]);
  rows.push(["s3 hot", await measure("s3 hot", s3Env(join(s3Dir, "cache-hot"), 1024 * MiB), `/api/stream/${s3Id}`, true)]);
  rows.push(["s3 cold", await measure("s3 cold", s3Env(join(s3Dir, "cache-cold"), 8 * MiB), `/api/stream/${s3Id}`, false)]);
  const base = rows[0]![1];
  console.log(`\nSTORAGE=s3 vs local, ${(size / MiB).toFixed(1)} MiB video, ${generator}, ${durationS} s per row, Bun ${Bun.version}\n`);
  console.log(`MEMORY_CACHE_BYTES: ${process.env.MEMORY_CACHE_BYTES ?? "default (32 MiB)"}; hot 64 KiB: random ranges within the first ${HOT_REGION / MiB} MiB after a warm-up; probes: bytes=0-1\n`);
  console.log("| Storage | 64 KiB ranges req/s | ratio | p99 ms | whole file MiB/s | ratio | hot 64 KiB req/s | ratio | CPU µs/answer | ratio | probes req/s | ratio | CPU µs/answer | ratio | errors |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  const cell = (x: (LoadResult & { cpuUs?: number }) | undefined, b: (LoadResult & { cpuUs?: number }) | undefined) =>
    x && b ? `${x.rps.toFixed(0)} | ${(x.rps / b.rps).toFixed(2)}x | ${x.cpuUs!.toFixed(1)} | ${(x.cpuUs! / b.cpuUs!).toFixed(2)}x` : "– | – | – | –";
  for (const [label, r] of rows) {
    const a = r.range64k!;
    const w = r.whole!;
    const errors = Object.values(r).reduce((n, x) => n + x.errors, 0);
    console.log(
      `| ${label} | ${a.rps.toFixed(0)} | ${(a.rps / base.range64k!.rps).toFixed(2)}x | ${(a.latency.p99 / 1000).toFixed(1)} | ${w.mibps.toFixed(0)} | ${(w.mibps / base.whole!.mibps).toFixed(2)}x | ${cell(r.hot64k, base.hot64k)} | ${cell(r.probe, base.probe)} | ${errors} |`,
    );
  }
} finally {
  await s3.dispose();
  rmSync(tmp, { recursive: true, force: true });
}
