/**
 * Small process and timing helpers shared by the bench harness.
 *
 * Every child process the harness starts goes through `spawnTracked`, so one exit hook can stop
 * them all on normal exit, on an error and on SIGINT/SIGTERM. Every wait is bounded.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Subprocess } from "bun";

export const REPO_ROOT = resolve(import.meta.dir, "..", "..");
export const BENCH_DIR = resolve(REPO_ROOT, "bench");
export const CACHE_DIR = resolve(BENCH_DIR, ".cache");
export const RESULTS_DIR = resolve(BENCH_DIR, "results");

export const LOOPBACK = "127.0.0.1";
/** The core servers are pinned to and the core load generators are pinned to. */
export const SERVER_CORE = 0;
export const CLIENT_CORE = 1;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const which_cache = new Map<string, string | null>();
/** Absolute path of an executable on PATH (or an absolute path that exists), or null. */
export function which(cmd: string): string | null {
  if (which_cache.has(cmd)) return which_cache.get(cmd) ?? null;
  let found: string | null = null;
  if (cmd.includes("/")) found = existsSync(cmd) ? cmd : null;
  else found = Bun.which(cmd);
  which_cache.set(cmd, found);
  return found;
}

let tasksetOk: boolean | null = null;
/** True when `taskset` exists and the machine has at least two cores to split. */
export function canPin(): boolean {
  if (tasksetOk !== null) return tasksetOk;
  tasksetOk = false;
  if (process.env.BENCH_NO_TASKSET === "1") return false;
  const ts = which("taskset");
  if (!ts || navigator.hardwareConcurrency < 2) return false;
  const r = Bun.spawnSync([ts, "-c", String(CLIENT_CORE), "true"], { stdout: "ignore", stderr: "ignore" });
  tasksetOk = r.exitCode === 0;
  return tasksetOk;
}

/** Prefix a command with `taskset -c <core>` when pinning is available. */
export function pinned(core: number, cmd: string[]): string[] {
  return canPin() ? [which("taskset") as string, "-c", String(core), ...cmd] : cmd;
}

export interface Tracked {
  proc: Subprocess<"ignore" | "pipe", "pipe" | "ignore" | "inherit", "pipe" | "ignore" | "inherit">;
  name: string;
  /** Resolves with the exit code. */
  exited: Promise<number>;
}

const live = new Set<Tracked>();

export interface SpawnOpts {
  cwd?: string;
  env?: Record<string, string | undefined>;
  stdout?: "pipe" | "ignore" | "inherit";
  stderr?: "pipe" | "ignore" | "inherit";
}

/** Spawn a long-running child that is killed when the harness exits. */
export function spawnTracked(name: string, cmd: string[], opts: SpawnOpts = {}): Tracked {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...(opts.env ?? {}) })) if (v !== undefined) env[k] = v;
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd ?? REPO_ROOT,
    env,
    stdin: "ignore",
    stdout: opts.stdout ?? "pipe",
    stderr: opts.stderr ?? "pipe",
  });
  const t: Tracked = { proc, name, exited: proc.exited };
  live.add(t);
  void proc.exited.then(() => live.delete(t));
  return t;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone (bounded). */
export async function stopTracked(t: Tracked, graceMs = 3000): Promise<void> {
  if (t.proc.exitCode !== null || t.proc.signalCode !== null) return;
  try {
    t.proc.kill("SIGTERM");
  } catch {}
  const done = await Promise.race([t.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    try {
      t.proc.kill("SIGKILL");
    } catch {}
    await Promise.race([t.exited, sleep(2000)]);
  }
  live.delete(t);
}

/**
 * Stop every tracked child synchronously: SIGTERM first (so nginx's master and a multi-process
 * Spool take their own workers down), then SIGKILL whatever is left a second later.
 */
function killAllSync(): void {
  if (!live.size) return;
  for (const t of live) {
    try {
      t.proc.kill("SIGTERM");
    } catch {}
  }
  Bun.sleepSync(1000);
  for (const t of live) {
    try {
      process.kill(t.proc.pid, 0);
      t.proc.kill("SIGKILL");
    } catch {}
  }
  live.clear();
}

let hooksInstalled = false;
/** Kill every tracked child on exit, uncaught errors and SIGINT/SIGTERM. */
export function installExitHooks(onSignal?: () => void): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAllSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      console.error(`\n[bench] ${sig}: stopping ${live.size} child process(es)`);
      onSignal?.();
      killAllSync();
      process.exit(130);
    });
  }
  process.on("uncaughtException", (err) => {
    console.error("[bench] uncaught:", err);
    killAllSync();
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => {
    console.error("[bench] unhandled rejection:", err);
    killAllSync();
    process.exit(1);
  });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run a command to completion with a hard time limit. */
export async function run(cmd: string[], opts: SpawnOpts & { timeoutMs: number; name?: string }): Promise<RunResult> {
  const t = spawnTracked(opts.name ?? cmd[0] ?? "cmd", cmd, { ...opts, stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stopTracked(t, 1000);
  }, opts.timeoutMs);
  const [stdout, stderr, code] = await Promise.all([
    new Response(t.proc.stdout as ReadableStream<Uint8Array>).text(),
    new Response(t.proc.stderr as ReadableStream<Uint8Array>).text(),
    t.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr, timedOut };
}

/** A TCP port that was free a moment ago on loopback. */
export async function freePort(): Promise<number> {
  const l = Bun.listen({ hostname: LOOPBACK, port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** Poll `url` until it answers with `status` or the deadline passes. */
export async function waitForHttp(url: string, timeoutMs: number, isAlive?: () => boolean, status = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (isAlive && !isAlive()) return false;
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      if (r.status === status) return true;
    } catch {}
    await sleep(100);
  }
  return false;
}

/** Collect a child's piped output (last `max` chars) without blocking it. */
export function drain(stream: unknown, max = 8000): () => string {
  let buf = "";
  if (stream instanceof ReadableStream) {
    void (async () => {
      const dec = new TextDecoder();
      try {
        for await (const chunk of stream as ReadableStream<Uint8Array>) {
          buf += dec.decode(chunk, { stream: true });
          if (buf.length > max * 2) buf = buf.slice(-max);
        }
      } catch {}
    })();
  }
  return () => buf.slice(-max);
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] as number;
}

export { ParkMiller } from "./prng.ts";

export function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function fmtBytes(n: number): string {
  if (n >= GiB) return `${+(n / GiB).toFixed(n % GiB ? 2 : 0)} GiB`;
  if (n >= MiB) return `${+(n / MiB).toFixed(n % MiB ? 1 : 0)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(0)} KiB`;
  return `${n} B`;
}

export function log(msg: string): void {
  const t = new Date().toISOString().slice(11, 19);
  console.log(`[${t}] ${msg}`);
}

let builtEntry: string | undefined;
/**
 * The Spool server entry the bench runs: the bundle `npm start` runs (built once per bench
 * process by scripts/build.ts), or `src/index.ts` with SPOOL_BENCH_ENTRY=src, to measure what the
 * bundle changes (A/B).
 */
export function spoolEntry(): string {
  if (process.env.SPOOL_BENCH_ENTRY === "src") return resolve(REPO_ROOT, "src/index.ts");
  if (builtEntry) return builtEntry;
  const build = Bun.spawnSync([process.execPath, resolve(REPO_ROOT, "scripts/build.ts")], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`scripts/build.ts failed: ${build.stderr.toString()}`);
  return (builtEntry = resolve(REPO_ROOT, "dist/index.js"));
}

/** How the bench's Spool command line reads in reports: `bun dist/index.js` or `bun src/index.ts`. */
export function spoolEntryLabel(): string {
  return process.env.SPOOL_BENCH_ENTRY === "src" ? "bun src/index.ts" : "bun dist/index.js (npm start's bundle)";
}
