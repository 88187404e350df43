/**
 * What a Spool serving process holds, phase by phase (issue 15's "leaner serving process").
 *
 *   bun bench/heap.ts [--tier=BYTES] [--readers=1000] [--seconds=10] [--smol] [--child] [--json]
 *
 * Starts Spool (the bundle `npm start` runs; `bun src/index.ts` with SPOOL_BENCH_ENTRY=src) the way the bench does (NODE_ENV=production, WORKERS=1,
 * TRANSCODE_IN_SERVER=0; MEMORY_CACHE_BYTES=0 unless --tier), with bench/lib/heap-probe.ts
 * preloaded, on a fresh DATA_DIR holding the bench's main video (ingested by the CLI), and
 * reports after each phase: RSS (and its split: private, and the bun executable's shared pages), the live JS heap and its object count, the modules loaded,
 * a forced full collection's time, and event-loop stalls (see heap-probe.ts for what each is).
 *
 *   started       listening, no request yet
 *   stream        after 2,000 stream answers (probes, 64 KiB ranges, 304s)
 *   slow-stream   1,000 slow readers (bench/lib/slow-readers.ts, 2 Mbit/s) with only the stream
 *                 route used so far: what a WORKERS child behind a balancer that sends it video
 *                 traffic holds. Peak RSS from VmHWM (reset at the start) and 100 ms samples;
 *                 flat as in the bench's slow-reader table (bench/lib/rss.ts rssTrend).
 *   other         after one of every other kind of request the bench makes (GET /api/videos,
 *                 a token mint, /metrics, /ready, /openapi.json, a missing static file, a watch page)
 *   slow-all      1,000 slow readers again: the bench's own case (its checks touch the API
 *                 before the slow readers start)
 *
 * --child: WORKERS=2, and every figure is the WORKERS child's (the primary serves every route
 * from the start; a child only what it has been asked for). Requests go to both processes (the
 * kernel spreads connections), so the child sees about half of each phase's; the `other` phase
 * repeats its requests on new connections until one has reached the child; the slow readers
 * are all the child's (bench/lib/slow-readers.ts `onlyPid`: a connection the primary accepted
 * is closed before its request and made again).
 *
 * Server on core 0, clients on core 1 (as the bench), when taskset exists.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RssSampler, resetHwm, rssTrend, treeHwm } from "./lib/rss.ts";
import { CACHE_DIR, CLIENT_CORE, LOOPBACK, REPO_ROOT, SERVER_CORE, freePort, spoolEntry, pinned, run, sleep, spawnTracked, stopTracked, waitForHttp } from "./lib/util.ts";

const args = new Map(process.argv.slice(2).map((a) => [a.replace(/=.*/, ""), a.includes("=") ? a.slice(a.indexOf("=") + 1) : "1"]));
const tier = args.get("--tier") ?? "0";
const readers = Number(args.get("--readers") ?? 1000);
const seconds = Number(args.get("--seconds") ?? 10);
const smol = args.has("--smol");
const childMode = args.has("--child");
const BUN = process.execPath;
const KEY = "heap-probe-api-key-0123456789";

const mainVideo = [resolve(CACHE_DIR, "media/spool-bench-720p.mp4"), resolve(REPO_ROOT, "fixtures/demo.mp4")].find((p) => existsSync(p))!;
const size = statSync(mainVideo).size;
const tmp = mkdtempSync(join(tmpdir(), "spool-heap-"));
const dataDir = join(tmp, "data");
mkdirSync(dataDir, { recursive: true });
const out = join(tmp, "probe.json");
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  NODE_ENV: "production",
  HOST: LOOPBACK,
  DATA_DIR: dataDir,
  SEED_DEMO: "0",
  WORKERS: childMode ? "2" : "1",
  TRANSCODE_IN_SERVER: "0",
  API_KEY: KEY,
  METRICS: "1",
  MEMORY_CACHE_BYTES: tier,
  LOG_LEVEL: "warn",
  SPOOL_HEAP_PROBE_OUT: out,
  // The child is started by the primary without our flags: BUN_OPTIONS reaches it through the environment.
  ...(childMode ? { BUN_OPTIONS: `${smol ? "--smol " : ""}--preload ${resolve(REPO_ROOT, "bench/lib/heap-probe.ts")}` } : {}),
};

const ingest = await run([BUN, resolve(REPO_ROOT, "src/cli/ingest.ts"), mainVideo, "--title", "heap probe", "--playback", "public"], { env, timeoutMs: 300_000, name: "ingest" });
const id = (JSON.parse(ingest.stdout.slice(ingest.stdout.indexOf("{"))) as { id: string }).id;
const port = await freePort();
const base = `http://${LOOPBACK}:${port}`;
const cmd = childMode ? [BUN, spoolEntry()] : [BUN, ...(smol ? ["--smol"] : []), "--preload", resolve(REPO_ROOT, "bench/lib/heap-probe.ts"), spoolEntry()];
const server = spawnTracked("spool", pinned(SERVER_CORE, cmd), { env: { ...env, PORT: String(port) }, stdout: "inherit", stderr: "inherit" });
const primaryPid = server.proc.pid;
let pid = primaryPid;

/** The WORKERS child of the primary (--child). */
function childOf(parent: number): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === parent) return Number(entry);
    } catch {}
  }
  return undefined;
}

interface Snapshot {
  rss: number;
  rssAfterGc: number;
  anon: number;
  file: number;
  heap: number;
  objects: number;
  modules: number;
  byPackage: Record<string, number>;
  srcModules: string[];
  fullGcMs: number;
  gaps: { ticks: number; p50: number; p99: number; max: number; over10: number; over20: number };
  topTypes: Record<string, number>;
}
const rows: { phase: string; snap: Snapshot; peak?: number; served?: string; trend?: string }[] = [];

async function snapshot(phase: string, extra: { peak?: number; served?: string; trend?: string } = {}): Promise<void> {
  rmSync(out, { force: true });
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 100 && !existsSync(out); i++) await sleep(50);
  await sleep(50);
  if (!existsSync(out)) throw new Error(`no report from the heap probe after ${phase} (is the preload running?)`);
  rows.push({ phase, snap: JSON.parse(readFileSync(out, "utf8")) as Snapshot, ...extra });
}

async function streamLoad(n: number): Promise<void> {
  const url = `${base}/api/stream/${id}`;
  const etag = (await fetch(url, { method: "HEAD" })).headers.get("etag")!;
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, async (_, j) => {
        const k = i + j;
        const start = (k * 7919 * 65536) % Math.max(1, size - 65536);
        const headers: Record<string, string> = k % 3 === 0 ? { range: "bytes=0-1" } : k % 3 === 1 ? { range: `bytes=${start}-${start + 65535}` } : { "if-none-match": etag };
        await (await fetch(url, { headers: { ...headers, ...(childMode ? { connection: "close" } : {}) } })).arrayBuffer();
      }),
    );
  }
}

async function slowReaders(): Promise<{ peak: number; served: string; trend: string }> {
  const tree = [pid];
  resetHwm(tree);
  // The process measured and its descendants (--child: the child's, not the primary beside it).
  const sampler = new RssSampler(pid, 100);
  sampler.start();
  // --child: every reader on the child (connections the kernel gives the primary are made again).
  const spec = { host: LOOPBACK, port, path: `/api/stream/${id}`, fileSize: size, n: readers, rateBps: 250_000, seconds, seed: 42, ...(childMode ? { onlyPid: pid } : {}) };
  const r = await run(pinned(CLIENT_CORE, [BUN, resolve(REPO_ROOT, "bench/lib/slow-readers.ts"), JSON.stringify(spec)]), { timeoutMs: (seconds + 40) * 1000, name: "slow" });
  const samples = sampler.stop();
  const line = r.stdout.split("\n").find((l) => l.startsWith("@@SLOWJSON "));
  const res = line ? (JSON.parse(line.slice(11)) as { connected: number; n: number; statuses: Record<string, number> }) : undefined;
  const peak = Math.max(...samples.map((s) => s.rss), treeHwm(tree) ?? 0);
  const { mid, last, flat } = rssTrend(samples);
  return { peak, served: res ? `${res.connected}/${res.n} ${JSON.stringify(res.statuses)}` : `failed: ${r.stderr.slice(-300)}`, trend: `${mib(mid)} → ${mib(last)}, ${flat ? "flat" : "**growing**"}` };
}

async function otherRoutes(): Promise<void> {
  if (!childMode) return otherRoutesOnce();
  // The child has built the app once it loaded Elysia (from source) or the app's chunk (the
  // bundle, whose registry holds chunks, not packages): either way, more modules than before.
  await snapshot("probe");
  const before = rows.pop()!.snap.modules;
  for (let i = 0; i < 100; i++) {
    await otherRoutesOnce();
    await snapshot("probe");
    const probe = rows.pop()!;
    if (probe.snap.byPackage.elysia || probe.snap.modules > before) return;
  }
  throw new Error("no request reached the child");
}

async function otherRoutesOnce(): Promise<void> {
  const auth = { authorization: `Bearer ${KEY}`, connection: "close" };
  const ok = async (path: string, init?: RequestInit) => {
    const r = await fetch(`${base}${path}`, { ...init, headers: { connection: "close", ...(init?.headers as Record<string, string>) } });
    await r.arrayBuffer();
    if (r.status >= 400) throw new Error(`${path} answered ${r.status}`);
  };
  await ok("/api/videos", { headers: auth });
  await ok(`/api/videos/${id}/tokens`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ expiresIn: 3600 }) });
  await ok("/metrics", { headers: auth });
  await ok("/ready");
  await ok("/swagger/json");
  await fetch(`${base}/static/does-not-exist.txt`).then((r) => r.arrayBuffer());
  await ok(`/watch/${id}`);
}

const mib = (n: number) => (n / 2 ** 20).toFixed(1);
try {
  if (childMode) {
    // /health would build the child's app: wait for the child to be listening instead.
    for (let i = 0; i < 300 && (pid === primaryPid || !(await fetch(`${base}/api/stream/${id}`, { method: "HEAD" }).then((r) => r.ok, () => false))); i++) {
      await sleep(100);
      pid = childOf(primaryPid) ?? primaryPid;
    }
    await sleep(3000);
  } else if (!(await waitForHttp(`${base}/health`, 30_000))) throw new Error("Spool did not answer /health");
  await sleep(1000);
  await snapshot("started");
  await streamLoad(2000);
  await snapshot("stream");
  const s1 = await slowReaders();
  await snapshot("slow-stream", s1);
  await otherRoutes();
  await sleep(500);
  await snapshot("other");
  const s2 = await slowReaders();
  await snapshot("slow-all", s2);
} finally {
  await stopTracked(server);
  rmSync(tmp, { recursive: true, force: true });
}

if (args.has("--json")) console.log(JSON.stringify(rows, null, 2));
console.log(`\nSpool heap probe${childMode ? " (the WORKERS child)" : ""}: MEMORY_CACHE_BYTES=${tier}${smol ? ", --smol" : ""}, ${readers} slow readers x ${seconds} s, ${mainVideo.split("/").pop()}\n`);
console.log("| phase | RSS MiB | anon / file MiB | peak RSS MiB | RSS 2nd → last quarter MiB | RSS after full GC | live heap MiB | objects | modules (src) | full GC ms | loop stalls p99 / max ms, >10 ms | readers |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
for (const { phase, snap, peak, served, trend } of rows) {
  const g = snap.gaps;
  console.log(
    `| ${phase} | ${mib(snap.rss)} | ${mib(snap.anon)} / ${mib(snap.file)} | ${peak ? mib(peak) : "–"} | ${trend ?? "–"} | ${mib(snap.rssAfterGc)} | ${mib(snap.heap)} | ${snap.objects} | ${snap.modules} (${snap.byPackage.src ?? 0}) | ${snap.fullGcMs.toFixed(1)} | ${g.p99.toFixed(1)} / ${g.max.toFixed(1)}, ${g.over10} | ${served ?? ""} |`,
  );
}
const last = rows.at(-1)!.snap;
console.log(`\npackages loaded at the end: ${Object.entries(last.byPackage).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ")}`);
const first = rows.find((r) => r.phase === "slow-stream")!.snap;
console.log(`packages loaded while only streaming: ${Object.entries(first.byPackage).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ")}`);
