#!/usr/bin/env bun
/**
 * Spool benchmark suite (issue 5). Starts every server itself on loopback, checks each one's
 * answers, measures A/B/A/B-interleaved rounds and writes bench/results/latest.{json,md,svg}.
 *
 *   bun bench/run.ts            full suite (<= ~15 min)          npm run bench
 *   bun bench/run.ts --quick    ~2 min                            npm run bench:quick
 *   bun bench/run.ts --smoke    seconds: checks + 1 s tiny load   npm run bench:smoke (CI)
 *   bun bench/run.ts --soak     10 min leak test: Spool alone, mixed traffic, RSS / fds / errors
 *                               (--soak-seconds=N, --soak-rate=R; CI runs --soak --soak-seconds=5)
 *
 * Options: --targets=spool,nginx,bun,express,fastapi  --rounds=N  --duration=S
 *          --generator=wrk|autocannon  --readme / --no-readme  --out=DIR  --help
 * Env: BENCH_NO_TASKSET=1 (do not pin), BENCH_PYTHON=/path/to/python3, SPOOL_WORKERS (default 1).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { checkClip, checkTarget, scrapeTier, type CheckReport, type MixCheck, type TierStats } from "./lib/checks.ts";
import { runLoad, wrkVersion, type Generator, type LoadResult, type LoadSpec } from "./lib/load.ts";
import { machineInfo } from "./lib/machine.ts";
import { FILM_RECIPES, ensureFilm, ensureLibrary, ensureMainVideo, ensureSweep, freeBytes, type FilmVideo, type LibraryVideo, type MediaFile } from "./lib/media.ts";
import { MIX_HEAD_BYTES, MIX_ZIPF_S, buildMix, mixByteBounds, topShare, writeMix, writePaths, type MixRequest } from "./lib/player-mix.ts";
import { tierBytesOf, writeReports, type MixInfo, type SlowCell, type TierDelta, type SuiteResult, type TargetSummary, type WorkloadResult } from "./lib/report.ts";
import { NoiseMeter, RssSampler, resetHwm, rssTrend, treeHwm, treeRss, waitIdle, type RssSample } from "./lib/rss.ts";
import { runSoak } from "./lib/soak.ts";
import type { SlowResult, SlowSpec } from "./lib/slow-readers.ts";
import {
  NGINX_DEFAULT_TUNING,
  REQUIRED,
  TARGET_LABELS,
  TARGET_ORDER,
  prepareWebroot,
  spoolDataDir,
  startTarget,
  type Running,
  type TargetId,
} from "./lib/targets.ts";
import { BENCH_DIR, CACHE_DIR, CLIENT_CORE, GiB, LOOPBACK, RESULTS_DIR, canPin, installExitHooks, log, median, pinned, run, sleep, which } from "./lib/util.ts";
import { FILM, PLAYERS, modeConfig, type Cell, type Mode, type Workload } from "./lib/workloads.ts";

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

interface Args {
  mode: Mode;
  targets: TargetId[];
  rounds?: number;
  durationS?: number;
  generator?: Generator;
  readme: boolean | null;
  out: string;
  /** Only these workload ids ("slow" = the slow readers); for quick A/B iterations. */
  workloads?: string[];
  /** Re-render md/svg (and README sections with --readme) from an existing results JSON. */
  rerender?: string;
  /** The soak (bench/lib/soak.ts) instead of the suite. */
  soak: boolean;
  soakSeconds: number;
  soakRate: number;
}

function usage(): string {
  return (
    [
      "usage: bun bench/run.ts [--quick | --smoke] [options]",
      "  --targets=spool,nginx,bun,express,fastapi   subset of targets (default: all available)",
      "  --rounds=N --duration=S                      override rounds / seconds per measurement",
      "  --generator=wrk|autocannon                   load generator for file workloads (default: wrk if installed)",
      "  --readme | --no-readme                       update the results section of bench/README.md (default: full runs only)",
      "  --out=DIR                                    results directory (default bench/results)",
      "  --workloads=range64k,revalidate,slow         only these workloads (ids as in latest.json; slow = slow readers)",
      "  --rerender[=FILE]                            only re-render md/svg from a results JSON (default bench/results/latest.json)",
      "  --soak [--soak-seconds=600] [--soak-rate=150]  leak test instead: Spool alone, mixed loopback traffic, RSS/fds/errors -> soak.{json,md}",
    ].join("\n")
  );
}

/** A whole number in [min, max] from an option's value, or a usage error naming the option. */
function wholeNumber(option: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value === "" || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`${option} must be a whole number from ${min} to ${max} (got "${value}")`);
  return n;
}

/** A mistake on the command line: one line and the usage (exit 2), not a stack trace or a full run on defaults. */
class UsageError extends Error {}

/** How long each target idles before its slow readers start (see the slow-reader loop). */
const SLOW_SETTLE_MS = 2000;

/** SPOOL_BENCH_ENV's `NAME=value` words (values without spaces). */
function extraSpoolEnv(spec: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const word of spec?.split(/\s+/) ?? []) {
    const eq = word.indexOf("=");
    if (eq > 0) env[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return env;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { mode: "full", targets: [...TARGET_ORDER], readme: null, out: RESULTS_DIR, soak: false, soakSeconds: 600, soakRate: 150 };
  for (const arg of argv) {
    const [k, v] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, ""];
    switch (k) {
      case "--quick":
        a.mode = "quick";
        break;
      case "--smoke":
        a.mode = "smoke";
        break;
      case "--full":
        a.mode = "full";
        break;
      case "--targets": {
        const ids = v.split(",").filter(Boolean);
        if (ids.length === 0) throw new UsageError(`--targets names no target (${TARGET_ORDER.join(",")})`);
        for (const id of ids) if (!TARGET_ORDER.includes(id as TargetId)) throw new UsageError(`unknown target ${id} (${TARGET_ORDER.join(",")})`);
        a.targets = TARGET_ORDER.filter((t) => ids.includes(t));
        break;
      }
      case "--rounds":
        a.rounds = wholeNumber(k, v, 1, 20);
        break;
      case "--duration":
        a.durationS = wholeNumber(k, v, 1, 60);
        break;
      case "--generator":
        if (v !== "wrk" && v !== "autocannon") throw new UsageError("--generator must be wrk or autocannon");
        a.generator = v;
        break;
      case "--readme":
        a.readme = true;
        break;
      case "--no-readme":
        a.readme = false;
        break;
      case "--out":
        a.out = resolve(v);
        break;
      case "--workloads":
        a.workloads = v.split(",").filter(Boolean);
        if (a.workloads.length === 0) throw new UsageError("--workloads names no workload");
        break;
      case "--soak":
        a.soak = true;
        break;
      case "--soak-seconds":
        a.soakSeconds = wholeNumber(k, v, 1, 86_400);
        break;
      case "--soak-rate":
        a.soakRate = wholeNumber(k, v, 1, 5000);
        break;
      case "--rerender":
        a.rerender = v ? resolve(v) : resolve(RESULTS_DIR, "latest.json");
        break;
      case "--help":
      case "-h":
        console.log(usage());
        process.exit(0);
      default:
        throw new UsageError(`unknown option ${arg}`);
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Suite
// ---------------------------------------------------------------------------------------------

const args = (() => {
  try {
    return parseArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench: ${error.message}\n${usage()}`);
    process.exit(2);
  }
})();
const startedAt = new Date();
const notes: string[] = [];
let tmp: string | null = null;

installExitHooks(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Re-measure once when unrelated processes used more than this share of the machine's CPU. */
const NOISE_RETRY = 0.15;

function rotate<T>(xs: T[], n: number): T[] {
  if (!xs.length) return xs;
  const k = n % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

function fmtRate(r: LoadResult): string {
  return `${Math.round(r.rps)} req/s, ${r.mibps.toFixed(0)} MiB/s, p50 ${(r.latency.p50 / 1000).toFixed(2)} ms, p99 ${(r.latency.p99 / 1000).toFixed(2)} ms${r.errors ? `, ERRORS ${r.errorDetail}` : ""}`;
}

/** Did the generator receive what the workload asks for? (A 200 for a range would be huge.) */
function sanity(w: Workload, r: LoadResult, fileSize: number, connections: number, mix?: MixRequest[]): string | null {
  if (r.errors) return `generator errors: ${r.errorDetail}`;
  if (w.kind === "mix") {
    if (r.requests === 0) return "no completed requests";
    if (!mix) return null;
    const [lo, hi] = mixByteBounds(mix, r.requests, connections);
    if (r.bytes < lo || r.bytes > hi) return `received ${Math.round(r.bytes / r.requests)} bytes per response, expected ${Math.round(lo / r.requests)}-${Math.round(hi / r.requests)} for this request list`;
    return null;
  }
  const expect = w.expectBody(fileSize);
  if (r.requests === 0) return r.bytes > 0 && expect > 1e6 ? null : "no completed requests";
  if (expect < 0) return null;
  const perReq = r.bytes / r.requests;
  const upper = ((expect + 2048) * (r.requests + connections)) / r.requests;
  if (perReq < expect || perReq > upper) return `received ${Math.round(perReq)} bytes per response, expected ${expect} + headers`;
  return null;
}

/** The size of each target's clip (`target\0path`), measured and checked once before the clip workloads. */
const clipSizes = new Map<string, number>();
/** Why a target's clip cannot be timed (`target\0path`): its checks failed. */
const clipFailures = new Map<string, string>();

/**
 * Checks each clip URL once per target (bench/lib/checks.ts checkClip): its size as the target
 * answers it (their headers differ), exact ranges against a whole GET of it, and on Spool that
 * the whole clip comes from the clip it kept as a file. The items join the target's checks; a
 * clip that fails them is not timed (its cells say why).
 */
async function measureClips(workloads: Workload[], running: Running[], checks: Map<TargetId, CheckReport>): Promise<void> {
  for (const w of workloads) {
    if (!w.query) continue;
    for (const t of running) {
      if (w.only && !w.only.includes(t.id)) continue;
      const base = t.paths[w.pathKey ?? w.file];
      if (base === undefined) continue;
      const path = base + w.query;
      const key = `${t.id}\0${path}`;
      if (clipSizes.has(key) || clipFailures.has(key)) continue;
      // Spool keeps clips as files (CLIP_CACHE_BYTES, on by default in the suite's environment).
      const c = await checkClip(t, path, `${w.file} clip ${w.query}`, t.id === "spool");
      checks.get(t.id)?.items.push(...c.items);
      const bad = c.items.filter((i) => !i.ok);
      for (const i of bad) log(`  FAIL ${t.label}: ${i.name}${i.detail ? ` - ${i.detail}` : ""}`);
      if (c.size !== null) {
        clipSizes.set(key, c.size);
        log(`${t.label}: ${w.file} clip ${w.query}: ${c.size} bytes, ${c.items.length} clip checks passed${c.items.at(-1)?.detail ? ` (${c.items.at(-1)?.name.split(": ").pop()}: ${c.items.at(-1)?.detail})` : ""}`);
      } else {
        clipFailures.set(key, bad.map((i) => i.name.split(": ").slice(1).join(": ")).join(", "));
        log(`warning: ${t.label} ${path} failed its clip checks; its clip workloads on it are not timed`);
      }
    }
  }
}

/** Each target's clip length for a clip workload (what its whole-clip GETs carry). */
function clipBytesOf(w: Workload, file: MediaFile, running: Running[]): Partial<Record<TargetId, number>> {
  const out: Partial<Record<TargetId, number>> = {};
  for (const t of running) {
    const base = t.paths[w.pathKey ?? file.key];
    const size = base === undefined ? undefined : clipSizes.get(`${t.id}\0${base}${w.query ?? ""}`);
    if (size !== undefined) out[t.id] = size;
  }
  return out;
}

/**
 * The player-start mix of this run (when its workload is selected): the library, and the request
 * lists (one per seed: each round has its own, the same for every target) and each target's URL
 * paths, written once to files in the run's temp dir for bench/wrk/mix.lua.
 */
class MixPlan {
  private lists = new Map<number, { file: string; mix: MixRequest[] }>();
  private pathFiles = new Map<TargetId, string | null>();
  constructor(
    public library: LibraryVideo[],
    private dir: string,
  ) {
    mkdirSync(dir, { recursive: true });
  }
  list(seed: number): { file: string; mix: MixRequest[] } {
    let l = this.lists.get(seed);
    if (!l) {
      const mix = buildMix(this.library.map((v) => v.size), seed);
      const file = resolve(this.dir, `list-${seed}.txt`);
      writeMix(file, mix);
      l = { file, mix };
      this.lists.set(seed, l);
    }
    return l;
  }
  /** The file of `t`'s paths for the library, or null when it does not serve every video. */
  paths(t: Running): string | null {
    if (!this.pathFiles.has(t.id)) {
      const paths = this.library.map((v) => t.paths[v.key]);
      let file: string | null = null;
      if (paths.every((p): p is string => p !== undefined)) {
        file = resolve(this.dir, `paths-${t.id}.txt`);
        writePaths(file, paths);
      }
      this.pathFiles.set(t.id, file);
    }
    return this.pathFiles.get(t.id) ?? null;
  }
  info(): MixInfo {
    const sizes = this.library.map((v) => v.size);
    const one = this.list(SEED_BASE).mix;
    const starts = one.filter((r) => r.end === 1 && r.start === 0).length;
    return {
      videos: sizes.length,
      totalBytes: sizes.reduce((a, b) => a + b, 0),
      minBytes: Math.min(...sizes),
      maxBytes: Math.max(...sizes),
      zipfS: MIX_ZIPF_S,
      top10Share: topShare(sizes.length, 10),
      headBytes: MIX_HEAD_BYTES,
      requestsPerStart: starts ? one.length / starts : NaN,
    };
  }
}
let mixPlan: MixPlan | null = null;

/** What the RAM tier did between two scrapes of one Spool (counters are per process, since start). */
function tierDelta(a: TierStats, b: TierStats): TierDelta {
  const d = (x: number | null, y: number | null) => (x !== null && y !== null ? y - x : null);
  return { hits: d(a.hits, b.hits), misses: d(a.misses, b.misses), evictions: d(a.evictions, b.evictions), bytesBefore: a.bytes, bytesAfter: b.bytes };
}

/** Round r of every workload uses seed SEED_BASE + r (the same ranges for every target). */
const SEED_BASE = 1000;
/** The first requests of round 1's player-start list each target must answer exactly before timing (2-3 starts). */
const MIX_CHECKED = 12;

/** One target's part in one workload: what it is sent each round. */
interface Participant {
  t: Running;
  spec: (round: number) => LoadSpec;
}

interface Unit extends Participant {
  w: Workload;
  file: MediaFile;
}

/**
 * Who runs workload `w` and with what request; targets that cannot (no JSON API, no validators)
 * get a blank cell with the reason instead.
 */
function participantsOf(
  w: Workload,
  file: MediaFile,
  running: Running[],
  checks: Map<TargetId, CheckReport>,
  durationS: number,
): { cells: Partial<Record<TargetId, Cell>>; participants: Participant[] } {
  const cells: Partial<Record<TargetId, Cell>> = {};
  const participants: Participant[] = [];
  for (const t of running) {
    if (w.only && !w.only.includes(t.id)) continue;
    if (t.onlyWorkloads && !t.onlyWorkloads.includes(w.id)) continue;
    const blank: Cell = { target: t.id, rounds: [], rps: NaN, gibps: NaN, p50us: NaN, p99us: NaN, errors: 0, generator: "", sane: false };
    if (w.urlPath === "/api/videos" && !t.caps.api) {
      cells[t.id] = { ...blank, note: "no JSON API" };
      continue;
    }
    if (w.kind === "mix") {
      const pathsFile = mixPlan?.paths(t);
      if (!mixPlan || !pathsFile) {
        cells[t.id] = { ...blank, note: "n/a: does not serve the library" };
        continue;
      }
      const plan = mixPlan;
      participants.push({
        t,
        spec: (round) => ({
          kind: "mix",
          baseUrl: t.baseUrl,
          path: "",
          mixPaths: pathsFile,
          mixList: plan.list(SEED_BASE + round).file,
          connections: w.connections,
          durationS,
        }),
      });
      continue;
    }
    const headers = w.headers ? w.headers(t, checks.get(t.id) as CheckReport) : undefined;
    if (headers === null) {
      cells[t.id] = { ...blank, note: "n/a: sends no validators" };
      continue;
    }
    const mediaPath = w.urlPath ?? t.paths[w.pathKey ?? file.key];
    if (mediaPath === undefined) {
      if (w.pathKey) cells[t.id] = { ...blank, note: `no URL for ${w.pathKey}` };
      continue;
    }
    const path = mediaPath + (w.query ?? "");
    const size = w.query ? clipSizes.get(`${t.id}\0${path}`) : file.size;
    if (size === undefined) {
      const why = clipFailures.get(`${t.id}\0${path}`);
      cells[t.id] = { ...blank, note: why ? `n/a: clip checks failed (${why})` : "n/a: no clip size (the clip request failed)" };
      continue;
    }
    participants.push({
      t,
      spec: (round) => ({
        kind: w.kind,
        baseUrl: t.baseUrl,
        path,
        fileSize: size,
        rangeLen: w.rangeLen,
        // The same seed per round for every workload: the signed workload requests the very
        // ranges that range64k requests in the same round.
        seed: SEED_BASE + round,
        headers,
        connections: w.connections,
        durationS,
      }),
    });
  }
  return { cells, participants };
}

async function main(): Promise<number> {
  const cfgSweep = args.mode === "smoke" ? ["sweep-1m"] : args.mode === "quick" ? ["sweep-1m", "sweep-1g"] : ["sweep-1m", "sweep-1g", "sweep-8g"];
  const machine = machineInfo();
  log(`spool bench: ${args.mode} mode on ${machine.cpu} (${machine.cores} cores), ${machine.pinning}`);
  if (!canPin()) notes.push("taskset unavailable or a single core: servers and load generators share cores, figures are noisier.");

  // The harness itself stays off the server core (children that must be on it are pinned explicitly).
  if (canPin()) Bun.spawnSync([which("taskset") as string, "-apc", String(CLIENT_CORE), String(process.pid)], { stdout: "ignore", stderr: "ignore" });

  let generator: Generator = args.generator ?? (which("wrk") ? "wrk" : "autocannon");
  if (generator === "wrk" && !which("wrk")) generator = "autocannon";
  if (generator === "autocannon") {
    notes.push(
      which("wrk")
        ? "File workloads measured with autocannon (--generator=autocannon)."
        : "wrk is not installed (apt-get install wrk): file workloads fell back to autocannon, a JS client that saturates before the fastest servers do; ratios between fast servers are compressed.",
    );
  }

  // Is anything else busy on this machine? (Reported; the suite runs anyway.)
  {
    const meter = new NoiseMeter();
    meter.start(process.pid);
    await sleep(1000);
    const busy = meter.stop();
    if (busy >= NOISE_RETRY) {
      log(`warning: other processes are using ${(busy * 100).toFixed(0)}% of the CPUs right now; figures will be noisy`);
      notes.push(`Before the run, other processes were using ${(busy * 100).toFixed(0)}% of the machine's CPUs.`);
    }
  }

  // Media.
  const main = await ensureMainVideo();
  let sweepKeys = cfgSweep;
  if (sweepKeys.includes("sweep-8g") && args.targets.includes("spool")) {
    const free = await freeBytes(CACHE_DIR);
    if (free !== null && free < 24 * GiB) {
      sweepKeys = sweepKeys.filter((k) => k !== "sweep-8g");
      notes.push(`8 GiB size-sweep point skipped: ${Math.round(free / GiB)} GiB free under bench/.cache (Spool's ingest copies the file; 24 GiB wanted).`);
    }
  }
  const sweep = await ensureSweep(main, sweepKeys);
  const media: MediaFile[] = [main, ...sweep];
  const cfg = modeConfig(args.mode, sweepKeys);
  const gen = (w: Workload): Generator => w.generator ?? generator;
  if (args.workloads) {
    const known = new Set([...cfg.workloads.map((w) => w.id), "slow"]);
    for (const id of args.workloads) if (!known.has(id)) throw new Error(`unknown workload ${id} (known: ${[...known].join(", ")})`);
    cfg.workloads = cfg.workloads.filter((w) => args.workloads!.includes(w.id));
  }
  const runSlow = !args.workloads || args.workloads.includes("slow");
  // The player-start mix's hundred videos, only when that workload runs.
  const library = cfg.workloads.some((w) => w.id === PLAYERS) ? await ensureLibrary() : [];
  // The two-hour film (a short one in smoke runs), only when a workload serves it.
  const film: FilmVideo | null = cfg.workloads.some((w) => w.file === FILM) ? await ensureFilm(FILM_RECIPES[args.mode === "smoke" ? "smoke" : "full"]) : null;
  if (film) {
    notes.push(
      `The film (${FILM_RECIPES[args.mode === "smoke" ? "smoke" : "full"].name}.mp4): ${(film.size / 1e6).toFixed(0)} MB, ${film.duration.toFixed(0)} s, a moov of ${(film.moovBytes / 2 ** 20).toFixed(2)} MiB (nginx's mp4_max_buffer_size is 16m)${film.madeInS !== undefined ? `; made in this run in ${film.madeInS.toFixed(0)} s` : ""}.`,
    );
  }
  /** Every file a workload may name (the film is served by Spool and nginx only). */
  const served: MediaFile[] = [...media, ...(film ? [film] : [])];
  const rounds = args.rounds ?? cfg.rounds;
  const durationS = args.durationS ?? cfg.durationS;

  // Targets.
  mkdirSync(CACHE_DIR, { recursive: true });
  tmp = mkdtempSync(resolve(CACHE_DIR, "run-"));
  const webroot = prepareWebroot(tmp, [...media, ...library, ...(film ? [film] : [])]);
  if (library.length) mixPlan = new MixPlan(library, resolve(tmp, "mix"));
  const ctx = {
    media,
    tmp,
    webroot,
    nginxTuning: NGINX_DEFAULT_TUNING,
    apiDbPath: undefined as string | undefined,
    // SPOOL_MEMORY_CACHE_BYTES: the RAM tier's bound for both Spool targets (0: off), for A/B runs.
    // SPOOL_BENCH_ENV="NAME=value NAME=value": anything else for Spool's processes (Bun's GC knobs, say).
    spoolEnv: {
      WORKERS: process.env.SPOOL_WORKERS ?? "1",
      ...(process.env.SPOOL_MEMORY_CACHE_BYTES ? { MEMORY_CACHE_BYTES: process.env.SPOOL_MEMORY_CACHE_BYTES } : {}),
      ...extraSpoolEnv(process.env.SPOOL_BENCH_ENV),
    },
    spool: undefined as Running | undefined,
    library: library.length ? library : undefined,
    film: film ?? undefined,
  };
  const summaries: TargetSummary[] = [];
  const running: Running[] = [];
  const checks = new Map<TargetId, CheckReport>();
  for (const id of args.targets) {
    log(`starting ${TARGET_LABELS[id]}`);
    const out = await startTarget(id, ctx);
    if (!out.ok) {
      log(`  ${out.skipped ? "SKIPPED" : "FAILED"}: ${out.reason.split("\n")[0]}`);
      summaries.push({ id, label: out.label, required: REQUIRED[id], status: out.skipped ? "skipped" : "failed", reason: out.reason });
      continue;
    }
    const t = out.running;
    if (id === "spool" && t.files) {
      // Every other target serves Spool's stored copies (same bytes, same inode, same page cache).
      const copies = t.files;
      const moved = ctx.media.filter((m) => copies[m.key]).length;
      ctx.media = ctx.media.map((m) => {
        const copy = copies[m.key];
        if (!copy) return m;
        // The copy is what gets measured: a sparse source's copy is usually not sparse.
        const st = statSync(copy);
        const sparse = st.blocks * 512 < st.size / 2;
        return { ...m, path: copy, sparse, label: m.sparse && !sparse ? m.label.replace(" (sparse)", "") : m.label };
      });
      // The library's videos too (all but the first are hard links to the cached files anyway).
      if (ctx.library && mixPlan) {
        ctx.library = ctx.library.map((v) => (copies[v.key] ? { ...v, path: copies[v.key] as string } : v));
        mixPlan.library = ctx.library;
      }
      prepareWebroot(ctx.tmp, [...ctx.media, ...(ctx.library ?? []), ...(ctx.film ? [ctx.film] : [])]);
      if (moved) log(`  other targets will serve Spool's stored copies of ${moved}/${media.length} files`);
    }
    // The bare Bun peer lists the same library, from the same SQLite file.
    if (id === "spool") ctx.apiDbPath = resolve(spoolDataDir(ctx.tmp), "spool.db");
    // Spool (METRICS=0) serves the same DATA_DIR: only what Spool's workloads need.
    const playersW = cfg.workloads.find((w) => w.id === PLAYERS);
    const mixCheck: MixCheck | undefined =
      mixPlan && playersW && (!playersW.only || playersW.only.includes(id)) && (!t.onlyWorkloads || t.onlyWorkloads.includes(PLAYERS))
        ? { library: mixPlan.library, requests: mixPlan.list(SEED_BASE).mix.slice(0, MIX_CHECKED) }
        : undefined;
    const report = await checkTarget(t, main, t.onlyWorkloads ? sweep.filter((m) => t.paths[m.key] !== undefined) : sweep, mixCheck);
    checks.set(id, report);
    const bad = report.items.filter((i) => !i.ok);
    for (const i of bad) log(`  ${i.mandatory ? "FAIL" : "warn"} ${t.label}: ${i.name}${i.detail ? ` - ${i.detail}` : ""}`);
    const summary: TargetSummary = { id, label: t.label, required: REQUIRED[id], status: report.ok ? "ok" : "failed", version: t.version, notes: t.notes, checks: report };
    if (!report.ok) {
      summary.reason = `failed checks: ${bad.filter((i) => i.mandatory).map((i) => i.name).join(", ")}`;
      await t.stop();
    } else {
      log(`  ok on :${t.port} (${t.version}); ${report.items.length} checks passed${bad.length ? ` (${bad.length} warnings)` : ""}`);
      running.push(t);
      if (id === "spool") ctx.spool = t;
    }
    summaries.push(summary);
  }

  const crashed = new Map<TargetId, string>();
  const checkAlive = (t: Running, during: string): boolean => {
    if (crashed.has(t.id)) return false;
    if (t.alive()) return true;
    const why = `${t.label} ${t.exitInfo()} during ${during}; last output: ${t.logs().slice(-600) || "(none)"}`;
    crashed.set(t.id, why);
    notes.push(why);
    log(`CRASH: ${why}`);
    return false;
  };
  const workloads: WorkloadResult[] = [];
  const slow: Partial<Record<TargetId, SlowCell>> = {};

  if (running.length) {
    // Warm-up (JIT, page cache, open-file caches), not recorded.
    if (args.mode !== "smoke") {
      for (const t of running) {
        await runLoad(generator, { kind: "ranges", baseUrl: t.baseUrl, path: t.paths[main.key] ?? "", fileSize: main.size, rangeLen: 65536, seed: 7, connections: 16, durationS: 1 }).catch(() => null);
        await waitIdle(t.pid);
      }
    }

    const runs = cfg.workloads.reduce((n, w) => n + running.filter((t) => !t.onlyWorkloads || t.onlyWorkloads.includes(w.id)).length, 0);
    const slowTargets = running.filter((t) => !t.onlyWorkloads || t.onlyWorkloads.includes("slow")).length;
    const estimate = runs * rounds * (durationS + 0.3) + (runSlow ? slowTargets * (cfg.slowSeconds + 3) : 0);
    log(`measuring: ${cfg.workloads.length} workloads x ${running.length} targets x ${rounds} rounds x ${durationS}s (~${Math.round(estimate / 60)} min)`);

    // Noise retries are bounded: at most one in fifteen measurements is repeated.
    let retryBudget = args.mode === "smoke" ? 0 : Math.ceil((cfg.workloads.length * running.length * rounds) / 15);
    const warmed = new Set<string>([main.key]);
    // A workload with `relativeTo` (the signed one) is measured inside the rounds of the workload
    // it is compared with, right next to the same target's run there; alone when that one is not
    // selected.
    const selected = new Set(cfg.workloads.map((w) => w.id));
    await measureClips(cfg.workloads, running, checks);
    const companions = (w: Workload) => cfg.workloads.filter((c) => c.relativeTo === w.id);
    for (const w of cfg.workloads.filter((x) => !x.relativeTo || !selected.has(x.relativeTo))) {
      const group = [w, ...companions(w)];
      const units: Unit[] = [];
      const cellsOf = new Map<string, Partial<Record<TargetId, Cell>>>();
      // Spool's RAM tier counters before the timed rounds of a mix workload (`workload\0target`).
      const tierBefore = new Map<string, TierStats>();
      for (const gw of group) {
        const file = served.find((m) => m.key === gw.file) ?? main;
        if (!warmed.has(file.key)) {
          warmed.add(file.key);
          await warmPageCache(ctx.media.find((m) => m.key === file.key)?.path ?? file.path, file.size, file.key);
        }
        const { cells, participants } = participantsOf(gw, file, running, checks, durationS);
        cellsOf.set(gw.id, cells);
        for (const p of participants) {
          // Spool's own copy behind a path key (the signed video) is another inode: read it too.
          const copy = gw.pathKey ? p.t.files?.[gw.pathKey] : undefined;
          if (copy && !warmed.has(copy)) {
            warmed.add(copy);
            await warmPageCache(copy, file.size, gw.pathKey as string);
            if (args.mode !== "smoke") {
              await runLoad(gen(gw), { ...p.spec(0), seed: 7, connections: 16, durationS: 1 }).catch(() => null);
              await waitIdle(p.t.pid);
            }
          }
          units.push({ w: gw, file, ...p });
        }
        // The player-start mix: the library into the page cache once, then one second of the
        // mix per target, not recorded (Spool's RAM tier, nginx's open-file cache and the JIT
        // reach their steady state, as on a server that has been up), with a list of its own.
        if (gw.kind === "mix" && mixPlan) {
          if (!warmed.has(PLAYERS)) {
            warmed.add(PLAYERS);
            await warmLibrary(mixPlan.library);
          }
          if (args.mode !== "smoke") {
            for (const p of participants) {
              await runLoad(gen(gw), { ...p.spec(0), mixList: mixPlan.list(7).file, durationS: 1 }).catch(() => null);
              await waitIdle(p.t.pid);
            }
          }
          for (const p of participants) {
            const tier = await scrapeTier(p.t);
            if (tier) tierBefore.set(`${gw.id}\0${p.t.id}`, tier);
          }
        }
      }
      // One slot per target: its run of `w`, then its companion runs (order flipped every other
      // round). A paired target (Spool (METRICS=0)) runs in its partner's slot, right before the
      // partner's run of `w`, so both pairs (METRICS=0 | public | signed) are back to back.
      const slots: { owner: TargetId; units: Unit[] }[] = [];
      for (const u of units) {
        const owner = u.t.pairedWith && units.some((x) => x.t.id === u.t.pairedWith) ? u.t.pairedWith : u.t.id;
        const slot = slots.find((s) => s.owner === owner);
        if (!slot) slots.push({ owner, units: [u] });
        else if (u.t.id !== owner) slot.units.unshift(u);
        else slot.units.push(u);
      }
      const results = new Map<string, LoadResult[]>();
      const problems = new Map<string, string[]>();
      const keyOf = (u: Unit) => `${u.w.id}\u0000${u.t.id}`;
      const add = <T,>(m: Map<string, T[]>, k: string, v: T) => m.set(k, [...(m.get(k) ?? []), v]);
      for (let round = 0; round < rounds; round++) {
        for (const { units: slot } of rotate(slots, round)) {
          for (const u of round % 2 ? [...slot].reverse() : slot) {
            const { t, spec } = u;
            const tag = `${u.w.id} r${round + 1}/${rounds} ${t.label}`;
            if (!checkAlive(t, `${u.w.id} round ${round + 1}`)) {
              add(problems, keyOf(u), `round ${round + 1}: server not running (${t.exitInfo()})`);
              continue;
            }
            try {
              // Measure, and measure once more if other processes took a real share of the CPUs.
              let r: LoadResult | null = null;
              for (let attempt = 0; attempt < 2; attempt++) {
                if (attempt > 0) retryBudget--;
                const meter = new NoiseMeter();
                meter.start(t.pid);
                r = await runLoad(gen(u.w), spec(round));
                r.noise = meter.stop();
                r.serverCpuS = meter.serverSeconds();
                if (r.noise < NOISE_RETRY) break;
                const again = attempt === 0 && retryBudget > 0;
                log(`  other processes used ${(r.noise * 100).toFixed(0)}% of the CPUs during ${t.label}'s run${again ? "; measuring again" : ""}`);
                if (!again) break;
                await waitIdle(t.pid);
                await sleep(1000);
              }
              if (!r) throw new Error("no measurement");
              r.round = round;
              add(results, keyOf(u), r);
              const bad = sanity(u.w, r, u.spec(0).fileSize ?? u.file.size, u.w.connections, u.w.kind === "mix" ? mixPlan?.list(SEED_BASE + round).mix : undefined);
              if (bad) add(problems, keyOf(u), `round ${round + 1}: ${bad}`);
              log(`${tag}: ${fmtRate(r)}`);
            } catch (e) {
              add(problems, keyOf(u), `round ${round + 1}: ${e instanceof Error ? e.message : String(e)}`);
              log(`${tag}: FAILED ${String(e).slice(0, 300)}`);
            }
            if (checkAlive(t, `${u.w.id} round ${round + 1}`) && !(await waitIdle(t.pid))) log(`  (${t.label} still busy 5 s after the load stopped)`);
          }
        }
      }
      // The RAM tier over the timed rounds (Spool): hits, misses, evictions, bytes held at the end.
      const tierOf = new Map<string, Partial<Record<TargetId, TierDelta>>>();
      for (const u of units) {
        const before = tierBefore.get(keyOf(u));
        const after = before ? await scrapeTier(u.t) : null;
        if (before && after) tierOf.set(u.w.id, { ...tierOf.get(u.w.id), [u.t.id]: tierDelta(before, after) });
      }
      for (const u of units) {
        const rs = results.get(keyOf(u)) ?? [];
        const probs = problems.get(keyOf(u)) ?? [];
        (cellsOf.get(u.w.id) as Partial<Record<TargetId, Cell>>)[u.t.id] = {
          target: u.t.id,
          rounds: rs,
          rps: median(rs.map((r) => r.rps)),
          gibps: median(rs.map((r) => r.bytes / r.durationS / GiB)),
          p50us: median(rs.map((r) => r.latency.p50)),
          p99us: median(rs.map((r) => r.latency.p99)),
          errors: rs.reduce((s, r) => s + r.errors, 0),
          generator: rs[0]?.generator ?? "",
          noise: Math.max(0, ...rs.map((r) => r.noise ?? 0)),
          sane: rs.length > 0 && probs.length === 0,
          note: probs.length ? probs.slice(0, 3).join("; ") : undefined,
        };
      }
      for (const gw of group) {
        const file = served.find((m) => m.key === gw.file) ?? main;
        workloads.push({
          id: gw.id,
          title: gw.title,
          short: gw.short,
          group: gw.group,
          file: file.key,
          fileLabel: ctx.media.find((m) => m.key === file.key)?.label ?? file.label,
          connections: gw.connections,
          rangeLen: gw.rangeLen,
          metric: gw.metric,
          relativeTo: gw.relativeTo && selected.has(gw.relativeTo) ? gw.relativeTo : undefined,
          cells: cellsOf.get(gw.id) ?? {},
          ...(tierOf.get(gw.id) ? { tier: tierOf.get(gw.id) } : {}),
          ...(gw.query ? { query: gw.query, clipBytes: clipBytesOf(gw, file, running) } : {}),
        });
      }
    }

    // 1,000 slow readers at 2 Mbit/s, one target at a time, sampling the server's RSS.
    if (runSlow) log(`slow readers: ${cfg.slowReaders} x 2 Mbit/s for ${cfg.slowSeconds}s per target`);
    for (const t of runSlow ? running.filter((x) => !x.onlyWorkloads || x.onlyWorkloads.includes("slow")) : []) {
      if (!checkAlive(t, "slow readers")) continue;
      // The readers measure what a server holds for them, not what the workloads left behind
      // and the server frees by itself once they stop: every target idles for SLOW_SETTLE_MS
      // first (Spool collects its RAM tier's evicted blocks a second after the last eviction).
      await waitIdle(t.pid);
      await sleep(SLOW_SETTLE_MS);
      // Spool's RAM tier holds blocks that count in its RSS: read how many bytes, before and after.
      const tierStart = await scrapeTier(t);
      const sampler = new RssSampler(t.pid, 100);
      const hwmReset = resetHwm(sampler.tree);
      const baseline = treeRss(sampler.tree) ?? NaN;
      const spec: SlowSpec = {
        host: LOOPBACK,
        port: t.port,
        path: t.paths[main.key] ?? "",
        fileSize: main.size,
        n: cfg.slowReaders,
        rateBps: 250_000,
        seconds: cfg.slowSeconds,
        seed: 42,
      };
      sampler.start();
      const r = await run(pinned(CLIENT_CORE, [process.execPath, resolve(BENCH_DIR, "lib/slow-readers.ts"), JSON.stringify(spec)]), {
        timeoutMs: (cfg.slowSeconds + 40) * 1000,
        name: "slow-readers",
      });
      const samples = sampler.stop();
      const hwm = hwmReset ? treeHwm(sampler.tree) : null;
      const line = r.stdout.split("\n").find((l) => l.startsWith("@@SLOWJSON "));
      const res = line ? (JSON.parse(line.slice("@@SLOWJSON ".length)) as SlowResult) : undefined;
      const cell = summarizeSlow(samples, baseline, hwm, res, line ? undefined : `client failed: ${(r.stderr || r.stdout).slice(-300)}`);
      const tierEnd = tierStart ? await scrapeTier(t) : null;
      if (tierStart?.bytes != null) cell.tierBytesBefore = tierStart.bytes;
      if (tierEnd?.bytes != null) cell.tierBytesAfter = tierEnd.bytes;
      if (tierStart?.clipHeaderBytes != null) cell.clipHeaderBytesBefore = tierStart.clipHeaderBytes;
      if (tierEnd?.clipHeaderBytes != null) cell.clipHeaderBytesAfter = tierEnd.clipHeaderBytes;
      slow[t.id] = cell;
      checkAlive(t, "slow readers");
      await waitIdle(t.pid);
      const tierHeld = tierBytesOf(cell);
      log(
        `slow ${t.label}: peak RSS ${(cell.peakRss / 2 ** 20).toFixed(1)} MiB (baseline ${(baseline / 2 ** 20).toFixed(1)}${tierHeld !== null ? `; RAM tier ${(tierHeld / 2 ** 20).toFixed(1)} MiB, peak without it ${((cell.peakRss - tierHeld) / 2 ** 20).toFixed(1)} MiB` : ""}), ` +
          `${res ? `${res.connected}/${res.n} connected, ${res.closedEarly} closed early, p50 rate ${(res.rateP50 / 1000).toFixed(0)} kB/s, statuses ${JSON.stringify(res.statuses)}` : cell.error}`,
      );
      await sleep(1000);
    }
  }

  for (const t of running) await t.stop();
  for (const [id, why] of crashed) {
    const sum = summaries.find((x) => x.id === id);
    if (sum) {
      sum.status = "failed";
      sum.reason = `crashed: ${why}`;
    }
  }

  const finishedAt = new Date();
  const suite: SuiteResult = {
    schema: 1,
    mode: args.mode,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    elapsedS: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
    machine,
    config: {
      rounds,
      durationS,
      generator: generator === "wrk" ? wrkVersion() ?? "wrk" : "autocannon",
      slowReaders: cfg.slowReaders,
      slowSeconds: cfg.slowSeconds,
      slowRateBps: 250_000,
      nginxTuning: NGINX_DEFAULT_TUNING,
    },
    media: ctx.media.map((m) => ({ key: m.key, label: m.label, size: m.size, sparse: m.sparse })),
    targets: summaries,
    workloads,
    slow,
    ...(mixPlan ? { mix: mixPlan.info() } : {}),
    ...(film && workloads.some((w) => w.file === FILM) ? { film: { label: film.label, size: film.size, duration: film.duration, moovBytes: film.moovBytes } } : {}),
    goals: [],
    notes,
  };
  const noisy = workloads.flatMap((w) => Object.values(w.cells).filter((c): c is Cell => !!c && (c.noise ?? 0) >= NOISE_RETRY).map((c) => `${w.id}/${c.target} ${((c.noise ?? 0) * 100).toFixed(0)}%`));
  if (noisy.length) {
    notes.push(
      `Other processes on the machine used over ${NOISE_RETRY * 100}% of the CPUs during some measurements even after a retry (${noisy.slice(0, 8).join(", ")}${noisy.length > 8 ? ", …" : ""}); medians damp this, but rerun on a quiet machine for publishable figures.`,
    );
  }
  const outBase = args.mode === "smoke" ? "smoke" : args.workloads ? "partial" : "latest";
  const updateReadme = args.readme ?? (args.mode === "full" && !args.workloads);
  const files = await writeReports(suite, args.out, outBase, updateReadme && args.mode !== "smoke");
  for (const g of suite.goals) log(`goal ${g.ok === null ? "n/a " : g.ok ? "MET " : "MISS"}: ${g.text}${g.detail ? ` (${g.detail})` : ""}`);
  log(`wrote ${files.join(", ")} in ${suite.elapsedS}s`);

  const requiredFailed = summaries.filter((s) => s.required && s.status === "failed");
  if (requiredFailed.length) {
    log(`required target(s) failed: ${requiredFailed.map((s) => s.label).join(", ")}`);
    return 1;
  }
  return 0;
}

/**
 * Reads a file once so that every target finds it in the page cache: otherwise whoever runs
 * first in a round pays the disk reads (the 8 GiB sweep point showed it). Skipped, with a
 * note, when the file would not fit comfortably in the memory available.
 */
async function warmPageCache(path: string, size: number, key: string): Promise<void> {
  const available = Number(/MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) * 1024;
  const amount = size >= GiB ? `${(size / GiB).toFixed(1)} GiB` : `${(size / 2 ** 20).toFixed(1)} MiB`;
  if (size > available / 2) {
    notes.push(`${key} (${amount}) is larger than half the available memory: its figures include disk reads.`);
    return;
  }
  const started = performance.now();
  const r = await run(pinned(CLIENT_CORE, ["dd", `if=${path}`, "of=/dev/null", "bs=8M", "status=none"]), { timeoutMs: 300_000, name: "warm" });
  log(`page cache: read ${key} (${amount}) in ${((performance.now() - started) / 1000).toFixed(1)} s${r.code === 0 ? "" : ` (dd exited ${r.code}: ${r.stderr.trim()})`}`);
}

/** Reads every library video once (one `cat` for all), so no target pays the disk reads of the mix. */
async function warmLibrary(library: MediaFile[]): Promise<void> {
  const started = performance.now();
  const total = library.reduce((a, v) => a + v.size, 0);
  const r = await run(pinned(CLIENT_CORE, ["sh", "-c", 'cat "$@" > /dev/null', "sh", ...library.map((v) => v.path)]), { timeoutMs: 300_000, name: "warm" });
  log(`page cache: read the library (${library.length} videos, ${(total / 2 ** 20).toFixed(1)} MiB) in ${((performance.now() - started) / 1000).toFixed(1)} s${r.code === 0 ? "" : ` (cat exited ${r.code}: ${r.stderr.trim().slice(0, 200)})`}`);
}

function summarizeSlow(samples: RssSample[], baseline: number, hwm: number | null, res: SlowResult | undefined, error?: string): SlowCell {
  const highest = samples.reduce<RssSample | undefined>((m, s) => (m && m.rss >= s.rss ? m : s), undefined);
  const peakSample = highest?.rss ?? 0;
  const peakRss = Math.max(peakSample, hwm ?? 0);
  const { mid, last, flat } = rssTrend(samples);
  const step = Math.max(1, Math.floor(samples.length / 60));
  return {
    peakRss,
    baselineRss: baseline,
    hwm,
    rssMidMean: mid,
    rssLastMean: last,
    flat,
    samples: samples.filter((_, i) => i % step === 0).map((s) => [Math.round(s.t * 10) / 10, Math.round((s.rss / 2 ** 20) * 10) / 10] as [number, number]),
    result: res,
    error,
    ...(highest?.split ? { peakSplit: { rss: highest.rss, ...highest.split } } : {}),
  };
}

async function rerender(file: string): Promise<number> {
  const suite = JSON.parse(readFileSync(file, "utf8")) as SuiteResult;
  const base = file.endsWith("smoke.json") ? "smoke" : "latest";
  const files = await writeReports(suite, args.out, base, args.readme ?? false);
  log(`re-rendered ${files.join(", ")} from ${file}`);
  return 0;
}

let code = 1;
try {
  code = args.rerender
    ? await rerender(args.rerender)
    : args.soak
      ? await runSoak({ seconds: args.soakSeconds, rate: args.soakRate, out: args.out, onTmp: (dir) => (tmp = dir) })
      : await main();
} catch (e) {
  console.error(`[bench] fatal: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  code = 1;
} finally {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
