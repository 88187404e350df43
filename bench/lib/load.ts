/**
 * Load generation: wrk (primary, with the Lua scripts in bench/wrk/) or autocannon (npm; for the
 * JSON API and as the fallback when wrk is missing). Both run pinned to the client core, as a
 * child process, with a hard time limit, and report the same LoadResult shape.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { bundleForNode } from "./targets.ts";
import { BENCH_DIR, CACHE_DIR, CLIENT_CORE, pinned, run, which } from "./util.ts";

export interface LoadSpec {
  /**
   * `ranges`: random `len`-byte ranges at unaligned offsets; `fixed`: the same request each time;
   * `mix`: the request list in `mixList` on the paths in `mixPaths`, replayed in order (the
   * player-start mix, bench/lib/player-mix.ts).
   */
  kind: "ranges" | "fixed" | "mix";
  baseUrl: string;
  path: string;
  fileSize?: number;
  rangeLen?: number;
  seed?: number;
  headers?: Record<string, string>;
  connections: number;
  durationS: number;
  /** `mix`: one URL path per line, line i for library video i (this target's paths). */
  mixPaths?: string;
  /** `mix`: `<video> <start> <end>` per line. */
  mixList?: string;
}

export interface LoadResult {
  generator: string;
  requests: number;
  bytes: number;
  durationS: number;
  rps: number;
  /** Response bytes per second (headers + bodies) in MiB/s. */
  mibps: number;
  /** Microseconds. */
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
  errors: number;
  errorDetail: string;
  /** Share of the machine's CPU used by unrelated processes during the run (0..1), when measured. */
  noise?: number;
  /** CPU seconds (user + system) the server's processes used during the run, when measured. */
  serverCpuS?: number;
  /** Which round of the suite this was (0-based), to pair targets measured back to back. */
  round?: number;
}

export type Generator = "wrk" | "autocannon";

export function wrkVersion(): string | null {
  const wrk = which("wrk");
  if (!wrk) return null;
  const r = Bun.spawnSync([wrk, "-v"], { stdout: "pipe", stderr: "pipe" });
  const line = `${r.stdout.toString()}${r.stderr.toString()}`.split("\n")[0] ?? "";
  const m = line.match(/wrk\s+(\S+)/);
  return m ? `wrk ${m[1]}` : "wrk";
}

let autocannonVersionCache: string | null = null;
export function autocannonVersion(): string {
  if (autocannonVersionCache) return autocannonVersionCache;
  try {
    const pkg = JSON.parse(readFileSync(resolve(BENCH_DIR, "../node_modules/autocannon/package.json"), "utf8")) as { version: string };
    autocannonVersionCache = `autocannon ${pkg.version}`;
  } catch {
    autocannonVersionCache = "autocannon";
  }
  return autocannonVersionCache;
}

function wrkScript(name: LoadSpec["kind"]): string {
  const dir = resolve(CACHE_DIR, "wrk");
  mkdirSync(dir, { recursive: true });
  const out = resolve(dir, `${name}.lua`);
  const common = readFileSync(resolve(BENCH_DIR, "wrk/common.lua"), "utf8");
  const body = readFileSync(resolve(BENCH_DIR, `wrk/${name}.lua`), "utf8");
  writeFileSync(out, `${common}\n${body}`);
  return out;
}

interface RawJson {
  requests: number;
  bytes: number;
  duration_us: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
}

export async function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const wrk = which("wrk");
  if (!wrk) throw new Error("wrk not installed");
  const script = wrkScript(spec.kind);
  if (spec.kind === "mix" && (!spec.mixPaths || !spec.mixList)) throw new Error("a mix load needs mixPaths and mixList");
  const args: string[] = spec.kind === "mix" ? [spec.mixPaths as string, spec.mixList as string] : [spec.path];
  if (spec.kind === "ranges") {
    args.push(String(spec.fileSize), String(spec.rangeLen), String(spec.seed ?? 1));
  } else if (spec.kind === "fixed") {
    for (const [k, v] of Object.entries(spec.headers ?? {})) args.push(k, v);
  }
  const cmd = pinned(CLIENT_CORE, [
    wrk,
    "-t1",
    `-c${spec.connections}`,
    `-d${spec.durationS}s`,
    "--timeout",
    "10s",
    "-s",
    script,
    `${spec.baseUrl}/`,
    "--",
    ...args,
  ]);
  const r = await run(cmd, { timeoutMs: (spec.durationS + 30) * 1000, name: "wrk" });
  const line = r.stdout.split("\n").find((l) => l.startsWith("@@WRKJSON "));
  if (!line) throw new Error(`wrk produced no result (code ${r.code}${r.timedOut ? ", timed out" : ""}): ${(r.stderr || r.stdout).slice(-800)}`);
  const j = JSON.parse(line.slice("@@WRKJSON ".length)) as RawJson;
  const durationS = j.duration_us / 1e6;
  const e = j.errors;
  const errors = e.connect + e.read + e.write + e.status + e.timeout;
  return {
    generator: wrkVersion() ?? "wrk",
    requests: j.requests,
    bytes: j.bytes,
    durationS,
    rps: j.requests / durationS,
    mibps: j.bytes / durationS / (1024 * 1024),
    latency: j.latency,
    errors,
    errorDetail: errors ? `connect ${e.connect}, read ${e.read}, write ${e.write}, status>=400 ${e.status}, timeout ${e.timeout}` : "",
  };
}

let runnerPath: string | null = null;
async function autocannonRunner(): Promise<string[]> {
  const node = which("node");
  if (node) {
    runnerPath ??= await bundleForNode(resolve(BENCH_DIR, "lib/autocannon-runner.ts"), "autocannon-runner.js");
    return [node, runnerPath];
  }
  return [process.execPath, resolve(BENCH_DIR, "lib/autocannon-runner.ts")];
}

export async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const base = await autocannonRunner();
  const cmd = pinned(CLIENT_CORE, [...base, JSON.stringify(spec)]);
  const r = await run(cmd, { timeoutMs: (spec.durationS + 30) * 1000, name: "autocannon" });
  const line = r.stdout.split("\n").find((l) => l.startsWith("@@ACJSON "));
  if (!line) throw new Error(`autocannon produced no result (code ${r.code}): ${(r.stderr || r.stdout).slice(-800)}`);
  const res = JSON.parse(line.slice("@@ACJSON ".length)) as Omit<LoadResult, "generator">;
  return { generator: `${autocannonVersion()} on ${base[0] === process.execPath ? "Bun" : "Node"}`, ...res };
}

export async function runLoad(gen: Generator, spec: LoadSpec): Promise<LoadResult> {
  return gen === "wrk" ? runWrk(spec) : runAutocannon(spec);
}
