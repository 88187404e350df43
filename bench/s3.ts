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
 * CLI, then `bun src/index.ts`), and an s3 target also needs the bucket started first and a
 * warm-up step; see bench/README.md ("Object storage").
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startS3rver } from "../test/helpers/s3.ts";
import { runLoad, type LoadResult } from "./lib/load.ts";
import { CACHE_DIR, LOOPBACK, MiB, REPO_ROOT, SERVER_CORE, freePort, pinned, run, spawnTracked, stopTracked, waitForHttp, which } from "./lib/util.ts";

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

async function measure(label: string, e: Record<string, string>, path: string, warm: boolean): Promise<Record<string, LoadResult>> {
  const port = await freePort();
  const server = spawnTracked(label, pinned(SERVER_CORE, [BUN, resolve(REPO_ROOT, "src/index.ts")]), { env: { ...e, PORT: String(port) }, stdout: "ignore", stderr: "ignore" });
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
    return { range64k, whole };
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
  const rows: [string, Record<string, LoadResult>][] = [];
  rows.push(["local", await measure("local", env(localDir), `/api/stream/${localId}`, true)]);
  rows.push(["s3 hot", await measure("s3 hot", s3Env(join(s3Dir, "cache-hot"), 1024 * MiB), `/api/stream/${s3Id}`, true)]);
  rows.push(["s3 cold", await measure("s3 cold", s3Env(join(s3Dir, "cache-cold"), 8 * MiB), `/api/stream/${s3Id}`, false)]);
  const base = rows[0]![1];
  console.log(`\nSTORAGE=s3 vs local, ${(size / MiB).toFixed(1)} MiB video, ${generator}, ${durationS} s per row, Bun ${Bun.version}\n`);
  console.log("| Storage | 64 KiB ranges req/s | ratio | p99 ms | whole file MiB/s | ratio | errors |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const [label, r] of rows) {
    const a = r.range64k!;
    const w = r.whole!;
    console.log(
      `| ${label} | ${a.rps.toFixed(0)} | ${(a.rps / base.range64k!.rps).toFixed(2)}x | ${(a.latency.p99 / 1000).toFixed(1)} | ${w.mibps.toFixed(0)} | ${(w.mibps / base.whole!.mibps).toFixed(2)}x | ${a.errors + w.errors} |`,
    );
  }
} finally {
  await s3.dispose();
  rmSync(tmp, { recursive: true, force: true });
}
