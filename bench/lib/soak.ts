/**
 * `bun bench/run.ts --soak [--soak-seconds=600] [--soak-rate=150]`: a bounded leak test. Starts
 * Spool alone the way the suite does, builds an HLS ladder for a 2 s clip (so the playlist route
 * is in the mix), then runs mixed traffic on loopback (bench/lib/soak-client.ts) for the given
 * time while sampling the server's RSS and open file descriptors from /proc. Writes
 * bench/results/soak.{json,md}; fails on any error or when RSS or descriptors are not flat.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { checkTarget, type CheckReport } from "./checks.ts";
import { machineInfo, type MachineInfo } from "./machine.ts";
import { ensureMainVideo, ensureSweep } from "./media.ts";
import { processTree, treeRss, waitIdle } from "./rss.ts";
import { KIND_INFO, type SoakClientResult, type SoakProgress, type SoakSpec } from "./soak-client.ts";
import { ENV } from "../../src/env.ts";
import { NGINX_DEFAULT_TUNING, SIGNED_KEY, prepareWebroot, spoolEnv, startTarget, type Running, type StartContext } from "./targets.ts";
import { BENCH_DIR, CACHE_DIR, CLIENT_CORE, LOOPBACK, REPO_ROOT, canPin, drain, log, pinned, sleep, spawnTracked, stopTracked, which } from "./util.ts";

export interface SoakOptions {
  seconds: number;
  /** Requests per second over all kinds (slow readers on top). */
  rate: number;
  out: string;
  /** Called with the run's temp dir as soon as it exists (the caller removes it on a signal). */
  onTmp?: (dir: string) => void;
}

/** RSS is flat when the last quarter's mean is within this of the second quarter's (as the slow-reader test). */
const RSS_TOLERANCE_BYTES = 10 * 2 ** 20;
/**
 * Spool's RAM tier (MEMORY_CACHE_BYTES, default 32 MiB) fills while traffic runs, which in a
 * short soak is still going on in the last quarter: growth up to its bound is a cache filling,
 * not a leak, and is allowed on top of the tolerance. A leak grows past it.
 */
const RAM_TIER_BYTES = Number(ENV.MEMORY_CACHE_BYTES.schema.default ?? 0);
const RSS_TOLERANCE_SHARE = 0.1;
/** Once traffic stops, descriptors must be back to the start value within this. */
const FD_TOLERANCE = 4;
/** During traffic, the last quarter's mean descriptor count may exceed the second quarter's by this (connections come and go). */
const FD_TRAFFIC_TOLERANCE = 8;
const CONCURRENCY = 8;
const SLOW_READERS = 4;
const SLOW_RATE_BPS = 250_000;
const SLOW_RANGE_BYTES = 512 * 1024;
/** Connections to the server still open after traffic: waited for this long at most. */
const QUIET_WAIT_MS = 15_000;
/** The HLS build of the 2 s clip: waited for this long at most (then the soak runs without it). */
const HLS_WAIT_MS = 120_000;

interface Snapshot {
  rss: number;
  fds: number;
  /** Descriptors by what they point at: socket, pipe, anon_inode, file. */
  fdKinds: Record<string, number>;
  /** Established TCP connections to the server's port (the harness's own idle ones aside). */
  connections: number;
  /** The harness's own idle keep-alive connections (checks, HLS polling), left out of `fds`. */
  harnessConnections: number;
}

interface Sample {
  t: number;
  rss: number;
  fds: number;
  requests: number;
  errors: number;
}

export interface SoakResult {
  schema: 1;
  kind: "soak";
  startedAt: string;
  finishedAt: string;
  elapsedS: number;
  machine: MachineInfo;
  config: {
    seconds: number;
    rate: number;
    concurrency: number;
    slowReaders: number;
    slowRateBps: number;
    slowRangeBytes: number;
    sampleMs: number;
    rssTolerance: string;
    fdTolerance: number;
    fdTrafficTolerance: number;
  };
  spool?: { version: string; notes: string[]; pid: number; checks: { passed: number; total: number; failed: string[] } };
  hls: { present: boolean; path?: string; note?: string };
  onePass?: SoakClientResult;
  client?: SoakClientResult;
  start?: Snapshot;
  end?: Snapshot;
  quarters?: { rssMid: number; rssLast: number; fdsMid: number; fdsLast: number };
  rssPeak?: number;
  fdsPeak?: number;
  /** [seconds, RSS MiB, fds, requests so far, errors so far], at most ~120 rows. */
  samples: [number, number, number, number, number][];
  verdict: { ok: boolean; errors: number; rssFlat: boolean | null; fdsFlat: boolean | null; fdsBack: boolean | null; reasons: string[] };
  notes: string[];
}

function fdSnapshot(pids: number[], skipSockets: Set<string>): { fds: number; kinds: Record<string, number> } {
  let fds = 0;
  const kinds: Record<string, number> = {};
  for (const pid of pids) {
    let names: string[] = [];
    try {
      names = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const n of names) {
      let target = "";
      try {
        target = readlinkSync(`/proc/${pid}/fd/${n}`);
      } catch {
        continue; // closed between the listing and the readlink
      }
      if (skipSockets.has(/^socket:\[(\d+)\]$/.exec(target)?.[1] ?? "")) continue;
      fds++;
      const kind = /^(socket|pipe|anon_inode):/.exec(target)?.[1] ?? (target.startsWith("/dev/") ? "device" : "file");
      kinds[kind] = (kinds[kind] ?? 0) + 1;
    }
  }
  return { fds, kinds };
}

/** Descriptors during traffic (cheap: a directory listing; the harness makes no requests then). */
function fdCount(pids: number[]): number {
  let n = 0;
  for (const pid of pids) {
    try {
      n += readdirSync(`/proc/${pid}/fd`).length;
    } catch {}
  }
  return n;
}

interface TcpEntry {
  localPort: number;
  remotePort: number;
  state: string;
  inode: string;
}

function tcpTable(): TcpEntry[] {
  const out: TcpEntry[] = [];
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(f, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10) continue;
      const port = (a: string) => Number.parseInt(a.slice(a.lastIndexOf(":") + 1), 16);
      out.push({ localPort: port(c[1]!), remotePort: port(c[2]!), state: c[3]!, inode: c[9]! });
    }
  }
  return out;
}

/** Socket inodes this process (the harness) holds. */
function ownSockets(): Set<string> {
  const own = new Set<string>();
  try {
    for (const n of readdirSync("/proc/self/fd")) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${n}`));
        if (m) own.add(m[1]!);
      } catch {}
    }
  } catch {}
  return own;
}

/**
 * The server's established connections on `port`, split into the harness's own (the checks' and
 * the HLS polling's idle keep-alive connections, which Elysia closes after 30 s idle: not the
 * soak's doing) and everyone else's. Returned as the server-side socket inodes.
 */
function connections(port: number): { harness: Set<string>; others: number } {
  const table = tcpTable();
  const own = ownSockets();
  const harness = new Set<string>();
  let others = 0;
  for (const e of table) {
    if (e.localPort !== port || e.state !== "01") continue;
    const peer = table.find((x) => x.localPort === e.remotePort && x.remotePort === port);
    if (peer && own.has(peer.inode)) harness.add(e.inode);
    else others++;
  }
  return { harness, others };
}

/** Waits (bounded) until nobody but the harness is connected to the server and it has stopped using the CPU. */
async function quiet(t: Running): Promise<void> {
  const deadline = Date.now() + QUIET_WAIT_MS;
  while (connections(t.port).others > 0 && Date.now() < deadline) await sleep(200);
  await waitIdle(t.pid);
}

/** RSS and descriptors; the server's sockets of the harness's own idle connections are left out of `fds`. */
function snapshot(t: Running, pids: number[]): Snapshot {
  const conns = connections(t.port);
  const { fds, kinds } = fdSnapshot(pids, conns.harness);
  return { rss: treeRss(pids) ?? NaN, fds, fdKinds: kinds, connections: conns.others, harnessConnections: conns.harness.size };
}

/** Runs the soak client to completion; `onProgress` sees its progress lines as they come. */
async function runClient(spec: SoakSpec, onProgress: (p: SoakProgress) => void): Promise<{ result?: SoakClientResult; error?: string }> {
  const tracked = spawnTracked("soak-client", pinned(CLIENT_CORE, [process.execPath, resolve(BENCH_DIR, "lib/soak-client.ts"), JSON.stringify(spec)]), {
    stdout: "pipe",
    stderr: "pipe",
  });
  const stderr = drain(tracked.proc.stderr);
  let result: SoakClientResult | undefined;
  const reading = (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of tracked.proc.stdout as ReadableStream<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith("@@SOAKPROGRESS ")) onProgress(JSON.parse(line.slice(15)) as SoakProgress);
        else if (line.startsWith("@@SOAKJSON ")) result = JSON.parse(line.slice(11)) as SoakClientResult;
      }
    }
  })().catch(() => {});
  const limit = (spec.seconds + 150) * 1000;
  const exited = await Promise.race([tracked.exited.then(() => true), sleep(limit).then(() => false)]);
  if (!exited) await stopTracked(tracked, 1000);
  await Promise.race([reading, sleep(2000)]);
  if (result) return { result };
  return { error: `soak client ${exited ? `exited with code ${tracked.proc.exitCode}` : "did not finish in time"}: ${stderr().slice(-600)}` };
}

/**
 * Builds the HLS ladder of the clip with the standalone worker (`bun src/cli/worker.ts`, on the
 * client core, against Spool's DATA_DIR), then stops it: the server itself runs with
 * TRANSCODE_IN_SERVER=0 as in the suite, and nothing transcodes during the soak.
 */
async function buildHls(t: Running, ctx: StartContext, clipId: string): Promise<SoakResult["hls"]> {
  const worker = spawnTracked("hls-worker", pinned(CLIENT_CORE, [process.execPath, resolve(REPO_ROOT, "src/cli/worker.ts")]), {
    env: spoolEnv(ctx),
    stdout: "pipe",
    stderr: "pipe",
  });
  const logs = [drain(worker.proc.stdout), drain(worker.proc.stderr)];
  const deadline = Date.now() + HLS_WAIT_MS;
  let last = "";
  try {
    while (Date.now() < deadline) {
      if (worker.proc.exitCode !== null) return { present: false, note: `the HLS worker exited with code ${worker.proc.exitCode}: ${logs.map((l) => l()).join("\n").slice(-300)}` };
      try {
        const res = await fetch(`${t.baseUrl}/api/videos/${clipId}`, { headers: { Accept: "application/json" }, signal: AbortSignal.timeout(5000) });
        const v = (await res.json()) as { hls?: { status?: string; masterUrl?: string | null; error?: string | null } };
        last = v.hls?.status ?? `status ${res.status}`;
        if (v.hls?.status === "ready" && v.hls.masterUrl) {
          const m = await fetch(t.baseUrl + v.hls.masterUrl, { signal: AbortSignal.timeout(5000) });
          const text = await m.text();
          return m.status === 200 && text.startsWith("#EXTM3U")
            ? { present: true, path: v.hls.masterUrl }
            : { present: false, note: `${v.hls.masterUrl} answered ${m.status}` };
        }
        if (v.hls?.status === "failed" || v.hls?.status === "skipped") return { present: false, note: `HLS ${v.hls.status}: ${v.hls.error ?? ""}` };
      } catch {}
      await sleep(500);
    }
    return { present: false, note: `no HLS ladder within ${HLS_WAIT_MS / 1000} s (last state: ${last})` };
  } finally {
    await stopTracked(worker, 5000);
  }
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

export async function runSoak(opts: SoakOptions): Promise<number> {
  const startedAt = new Date();
  const machine = machineInfo();
  const sampleMs = Math.round(Math.min(5000, Math.max(500, (opts.seconds * 1000) / 120)));
  const notes: string[] = [];
  const result: SoakResult = {
    schema: 1,
    kind: "soak",
    startedAt: startedAt.toISOString(),
    finishedAt: "",
    elapsedS: 0,
    machine,
    config: {
      seconds: opts.seconds,
      rate: opts.rate,
      concurrency: CONCURRENCY,
      slowReaders: SLOW_READERS,
      slowRateBps: SLOW_RATE_BPS,
      slowRangeBytes: SLOW_RANGE_BYTES,
      sampleMs,
      rssTolerance: `max(${RSS_TOLERANCE_BYTES / 2 ** 20} MiB, ${RSS_TOLERANCE_SHARE * 100}%) + the RAM tier's ${RAM_TIER_BYTES / 2 ** 20} MiB`,
      fdTolerance: FD_TOLERANCE,
      fdTrafficTolerance: FD_TRAFFIC_TOLERANCE,
    },
    hls: { present: false },
    samples: [],
    verdict: { ok: false, errors: 0, rssFlat: null, fdsFlat: null, fdsBack: null, reasons: [] },
    notes,
  };
  log(`spool soak: ${opts.seconds} s of mixed traffic at ${opts.rate} req/s (+${SLOW_READERS} slow readers) on ${LOOPBACK}, samples every ${sampleMs} ms`);
  if (canPin()) Bun.spawnSync([which("taskset") as string, "-apc", String(CLIENT_CORE), String(process.pid)], { stdout: "ignore", stderr: "ignore" });
  else notes.push("taskset unavailable or a single core: the server and the traffic share cores.");

  const main = await ensureMainVideo();
  // A 2 s 180p clip (+ padding) whose HLS ladder takes seconds to build: ingested first, so the
  // worker's queue (oldest first) builds it before anything else.
  const [clip] = await ensureSweep(main, ["sweep-1m"]);
  mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = mkdtempSync(resolve(CACHE_DIR, "soak-"));
  opts.onTmp?.(tmp);
  const ctx: StartContext = {
    media: [clip!, main],
    tmp,
    webroot: prepareWebroot(tmp, [clip!, main]),
    nginxTuning: NGINX_DEFAULT_TUNING,
    spoolEnv: { WORKERS: "1" },
  };
  let t: Running | undefined;
  try {
    log("starting Spool");
    const out = await startTarget("spool", ctx);
    if (!out.ok) {
      result.verdict.reasons.push(`Spool did not start: ${out.reason.split("\n")[0]}`);
      log(`  FAILED: ${out.reason.split("\n")[0]}`);
      return finish(result, opts, startedAt);
    }
    t = out.running;
    const report: CheckReport = await checkTarget(t, main, [clip!]);
    const failed = report.items.filter((i) => !i.ok && i.mandatory);
    result.spool = {
      version: t.version,
      notes: t.notes,
      pid: t.pid,
      checks: { passed: report.items.filter((i) => i.ok).length, total: report.items.length, failed: failed.map((i) => `${i.name}${i.detail ? `: ${i.detail}` : ""}`) },
    };
    if (!report.ok || !report.etag) {
      for (const f of result.spool.checks.failed) log(`  FAIL ${f}`);
      result.verdict.reasons.push(`Spool failed its checks: ${failed.map((i) => i.name).join(", ") || "no ETag"}`);
      return finish(result, opts, startedAt);
    }
    log(`  ok on :${t.port} (${t.version}); ${report.items.length} checks passed`);
    const clipId = t.paths[clip!.key]?.split("/").pop() ?? "";
    log("building the HLS ladder of the clip (bun src/cli/worker.ts, then stopped)");
    result.hls = await buildHls(t, ctx, clipId);
    log(result.hls.present ? `  HLS master playlist: ${result.hls.path}` : `  no HLS in the mix: ${result.hls.note}`);
    if (!result.hls.present) notes.push(`No HLS master playlist in the mix: ${result.hls.note}`);

    const videoPath = t.paths[main.key] as string;
    const spec: SoakSpec = {
      host: LOOPBACK,
      port: t.port,
      seconds: opts.seconds,
      rate: opts.rate,
      concurrency: CONCURRENCY,
      slowReaders: SLOW_READERS,
      slowRateBps: SLOW_RATE_BPS,
      slowRangeBytes: SLOW_RANGE_BYTES,
      videoId: videoPath.split("/").pop() as string,
      videoPath,
      fileSize: main.size,
      etag: report.etag,
      signedPath: t.paths[SIGNED_KEY],
      hlsPath: result.hls.path,
      apiKey: t.apiHeaders?.Authorization?.replace(/^Bearer /, "") ?? "",
      seed: 4242,
      progressMs: sampleMs,
    };

    // One request of every kind first: each answers as expected, and every cache and file the
    // traffic touches is open before the start value is taken.
    const pass = await runClient({ ...spec, onePass: true, seconds: 30 }, () => {});
    if (!pass.result) {
      result.verdict.reasons.push(`the first pass of requests failed: ${pass.error}`);
      return finish(result, opts, startedAt);
    }
    result.onePass = pass.result;
    if (pass.result.errors) {
      for (const e of pass.result.errorSamples) log(`  first pass: ${e}`);
      result.verdict.reasons.push(`the first pass (one request of each kind) had ${pass.result.errors} error(s)`);
      return finish(result, opts, startedAt);
    }
    log(`first pass: ${pass.result.requests} requests of ${Object.keys(pass.result.kinds).length} kinds answered as expected`);

    await quiet(t);
    const pids = processTree(t.pid);
    result.start = snapshot(t, pids);
    log(`start: RSS ${mib(result.start.rss)}, ${result.start.fds} fds (${fmtKinds(result.start.fdKinds)}), 0 errors`);

    // Traffic, sampled.
    const samples: Sample[] = [];
    let progress: SoakProgress = { t: 0, requests: 0, errors: 0 };
    const t0 = performance.now();
    const sample = () => samples.push({ t: (performance.now() - t0) / 1000, rss: treeRss(pids) ?? NaN, fds: fdCount(pids), requests: progress.requests, errors: progress.errors });
    sample();
    const timer = setInterval(sample, sampleMs);
    let lastLog = 0;
    const client = await runClient(spec, (p) => {
      progress = p;
      if (p.t - lastLog >= Math.max(10, opts.seconds / 10)) {
        lastLog = p.t;
        const s = samples.at(-1);
        log(`  ${p.t.toFixed(0)} s: ${p.requests} requests, ${p.errors} errors${s ? `, RSS ${mib(s.rss)}, ${s.fds} fds` : ""}`);
      }
    });
    if (client.result) progress = { t: client.result.seconds, requests: client.result.requests, errors: client.result.errors };
    sample();
    clearInterval(timer);
    if (!client.result) result.verdict.reasons.push(client.error ?? "the soak client failed");
    result.client = client.result;
    if (!t.alive()) result.verdict.reasons.push(`Spool ${t.exitInfo()} during the soak: ${t.logs().slice(-400)}`);

    // Traffic is over and the client is gone with its sockets: back to the start?
    await quiet(t);
    result.end = snapshot(t, pids);

    const end = samples.at(-1)?.t ?? 0;
    const win = (a: number, b: number, f: (s: Sample) => number) => mean(samples.filter((s) => s.t >= a * end && s.t <= b * end).map(f));
    const q = { rssMid: win(0.25, 0.5, (s) => s.rss), rssLast: win(0.75, 1, (s) => s.rss), fdsMid: win(0.25, 0.5, (s) => s.fds), fdsLast: win(0.75, 1, (s) => s.fds) };
    result.quarters = q;
    result.rssPeak = Math.max(...samples.map((s) => s.rss));
    result.fdsPeak = Math.max(...samples.map((s) => s.fds));
    const step = Math.max(1, Math.ceil(samples.length / 120));
    result.samples = samples
      .filter((_, i) => i % step === 0 || i === samples.length - 1)
      .map((s) => [Math.round(s.t * 10) / 10, Math.round((s.rss / 2 ** 20) * 10) / 10, s.fds, s.requests, s.errors]);

    const v = result.verdict;
    v.rssFlat = Number.isFinite(q.rssLast - q.rssMid) ? q.rssLast - q.rssMid <= Math.max(RSS_TOLERANCE_BYTES, RSS_TOLERANCE_SHARE * q.rssMid) + RAM_TIER_BYTES : null;
    const fdsSteady = Number.isFinite(q.fdsLast - q.fdsMid) ? q.fdsLast - q.fdsMid <= FD_TRAFFIC_TOLERANCE : null;
    v.fdsBack = Math.abs(result.end.fds - result.start.fds) <= FD_TOLERANCE;
    v.fdsFlat = fdsSteady === null ? null : fdsSteady && v.fdsBack;
    if (v.rssFlat !== true) v.reasons.push(`RSS not flat: ${mib(q.rssMid)} in the second quarter → ${mib(q.rssLast)} in the last (tolerance ${result.config.rssTolerance})`);
    if (fdsSteady !== true) v.reasons.push(`descriptors grew during traffic: ${q.fdsMid.toFixed(1)} → ${q.fdsLast.toFixed(1)} on average (tolerance +${FD_TRAFFIC_TOLERANCE})`);
    if (!v.fdsBack) v.reasons.push(`descriptors not back to the start once traffic stopped: ${result.start.fds} → ${result.end.fds} (tolerance ±${FD_TOLERANCE}; ${fmtKinds(result.start.fdKinds)} → ${fmtKinds(result.end.fdKinds)})`);
    return finish(result, opts, startedAt);
  } finally {
    if (t) await t.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const conns = (s: Snapshot) => `${s.connections}${s.harnessConnections ? ` (+${s.harnessConnections} the harness's, idle)` : ""}`;
const mib = (n: number) => (Number.isFinite(n) ? `${(n / 2 ** 20).toFixed(1)} MiB` : "–");
const fmtKinds = (k: Record<string, number>) =>
  Object.entries(k)
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${n} ${name}`)
    .join(", ");

function finish(r: SoakResult, opts: SoakOptions, startedAt: Date): number {
  const finishedAt = new Date();
  r.finishedAt = finishedAt.toISOString();
  r.elapsedS = Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000);
  const v = r.verdict;
  v.errors = (r.client?.errors ?? 0) + (r.onePass?.errors ?? 0);
  if (r.client?.errors) v.reasons.unshift(`${r.client.errors} error(s) during the soak`);
  v.ok = v.reasons.length === 0 && v.errors === 0 && v.rssFlat === true && v.fdsFlat === true;
  mkdirSync(opts.out, { recursive: true });
  const json = resolve(opts.out, "soak.json");
  const md = resolve(opts.out, "soak.md");
  writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(md, `${renderSoak(r)}\n`);
  for (const e of r.client?.errorSamples ?? []) log(`  error: ${e}`);
  if (r.start && r.end) {
    log(`end: RSS ${mib(r.end.rss)} (second quarter ${mib(r.quarters?.rssMid ?? NaN)} → last quarter ${mib(r.quarters?.rssLast ?? NaN)}), ${r.end.fds} fds (start ${r.start.fds}), ${v.errors} errors, ${r.client?.requests ?? 0} requests`);
  }
  log(`wrote ${[json, md].map((f) => relative(REPO_ROOT, f)).join(", ")} in ${r.elapsedS}s`);
  log(v.ok ? `soak PASSED: 0 errors, RSS flat, descriptors flat and back to the start` : `soak FAILED: ${v.reasons.join("; ") || "see soak.md"}`);
  return v.ok ? 0 : 1;
}

function renderSoak(r: SoakResult): string {
  const out: string[] = [];
  const v = r.verdict;
  const mark = (x: boolean | null) => (x === null ? "➖" : x ? "✅" : "❌");
  out.push(`### Spool soak (${r.config.seconds} s, ${r.startedAt.slice(0, 16).replace("T", " ")} UTC): ${v.ok ? "passed" : "**FAILED**"}`, "");
  out.push(`**Machine:** ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.os}, Linux ${r.machine.kernel}; ${r.machine.pinning}.  `);
  if (r.spool) out.push(`**Spool:** ${r.spool.version}; ${r.spool.notes.join("; ")}; checks ${r.spool.checks.passed}/${r.spool.checks.total} passed.  `);
  out.push(
    `**Traffic:** ${r.config.rate} requests/s on 127.0.0.1 (at most ${r.config.concurrency} in flight, Bun fetch with keep-alive) plus ${r.config.slowReaders} slow raw-TCP readers at ${r.config.slowRateBps / 1000} kB/s (${r.config.slowRangeBytes / 1024} KiB ranges, every other one hanging up halfway), for ${r.config.seconds} s; RSS (VmRSS) and descriptors (/proc/<pid>/fd) sampled every ${r.config.sampleMs / 1000} s.`,
    "",
  );
  out.push(`- ${mark(v.errors === 0 && !!r.client)} Errors: ${v.errors}${r.client ? ` of ${r.client.requests.toLocaleString("en-US")} requests` : ""}`);
  out.push(
    `- ${mark(v.rssFlat)} RSS flat: ${r.quarters ? `${mib(r.quarters.rssMid)} (second quarter) → ${mib(r.quarters.rssLast)} (last quarter), tolerance ${r.config.rssTolerance}` : "not measured"}`,
  );
  out.push(
    `- ${mark(v.fdsFlat)} Descriptors flat: ${r.quarters ? `${r.quarters.fdsMid.toFixed(1)} → ${r.quarters.fdsLast.toFixed(1)} on average during traffic (tolerance +${r.config.fdTrafficTolerance})` : "not measured"}${r.start && r.end ? `; ${r.start.fds} at the start, ${r.end.fds} once traffic stopped (tolerance ±${r.config.fdTolerance})` : ""}`,
  );
  for (const reason of v.reasons) out.push(`- ❌ ${reason}`);
  out.push("");
  if (r.start && r.end) {
    out.push("#### Start and end", "");
    out.push("| | RSS | Open fds | fds by kind | Connections | Requests | Errors |");
    out.push("|---|---:|---:|---|---:|---:|---:|");
    out.push(`| Start (after one request of each kind, idle) | ${mib(r.start.rss)} | ${r.start.fds} | ${fmtKinds(r.start.fdKinds)} | ${conns(r.start)} | 0 | 0 |`);
    if (r.quarters) {
      out.push(`| Second quarter of the traffic (mean) | ${mib(r.quarters.rssMid)} | ${r.quarters.fdsMid.toFixed(1)} | | | | |`);
      out.push(`| Last quarter of the traffic (mean) | ${mib(r.quarters.rssLast)} | ${r.quarters.fdsLast.toFixed(1)} | | | | |`);
      out.push(`| Peak during the traffic | ${mib(r.rssPeak ?? NaN)} | ${r.fdsPeak ?? "–"} | | | | |`);
    }
    out.push(`| End (traffic stopped, idle) | ${mib(r.end.rss)} | ${r.end.fds} | ${fmtKinds(r.end.fdKinds)} | ${conns(r.end)} | ${(r.client?.requests ?? 0).toLocaleString("en-US")} | ${v.errors} |`);
    out.push("");
    if (r.start.harnessConnections || r.end.harnessConnections) {
      out.push("(The harness's own idle keep-alive connections from the checks, which Elysia closes after 30 s, are left out of the descriptor counts.)", "");
    }
  }
  if (r.client) {
    out.push("#### Requests by kind", "");
    out.push("| Kind | What | Requests | Errors | Statuses | p50 / p99 ms | Bytes |");
    out.push("|---|---|---:|---:|---|---:|---:|");
    for (const [k, s] of Object.entries(r.client.kinds).sort((a, b) => b[1].requests - a[1].requests)) {
      const statuses = Object.entries(s.statuses).map(([code, n]) => `${code}: ${n}`).join(", ");
      out.push(`| ${k} | ${KIND_INFO[k] ?? ""} | ${s.requests.toLocaleString("en-US")} | ${s.errors} | ${statuses} | ${s.p50ms} / ${s.p99ms} | ${mib(s.bytes)} |`);
    }
    out.push("");
    if (r.client.errorSamples.length) {
      out.push("First errors:", "");
      for (const e of r.client.errorSamples) out.push(`- ${e}`);
      out.push("");
    }
  }
  if (r.samples.length) {
    out.push("#### Over time", "");
    out.push("| Seconds | RSS (MiB) | Open fds | Requests | Errors |");
    out.push("|---:|---:|---:|---:|---:|");
    const step = Math.max(1, Math.ceil(r.samples.length / 12));
    r.samples.forEach((s, i) => {
      if (i % step === 0 || i === r.samples.length - 1) out.push(`| ${s[0]} | ${s[1]} | ${s[2]} | ${s[3].toLocaleString("en-US")} | ${s[4]} |`);
    });
    out.push("");
  }
  if (r.notes.length) {
    out.push("#### Notes", "");
    for (const n of r.notes) out.push(`- ${n}`);
    out.push("");
  }
  return out.join("\n");
}
