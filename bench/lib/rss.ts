/**
 * Resident memory of a server process and its descendants, sampled from /proc/<pid>/status
 * (VmRSS now, VmHWM peak, and the split of VmRSS into private and file-backed pages). Linux
 * only; returns nulls elsewhere.
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs";

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number | null {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * VmRSS split as the kernel counts it (bytes): `anon` private memory (RssAnon + RssShmem: the
 * heap, buffers, caches; what a second process would need again), and `file` pages mapped from
 * files (RssFile: almost all of it the runtime's own executable and libraries, shared by every
 * process that runs the same binary, and dropped by the kernel under memory pressure).
 */
export interface RssSplit {
  anon: number;
  file: number;
}

function statusSplit(pid: number): RssSplit | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
    const anon = kb("RssAnon") + kb("RssShmem");
    const file = kb("RssFile");
    return Number.isFinite(anon) && Number.isFinite(file) ? { anon: anon * 1024, file: file * 1024 } : null;
  } catch {
    return null;
  }
}

/** Sum of the RSS split over the tree (null when /proc has no split: an old kernel, or not Linux). */
export function treeRssSplit(pids: number[]): RssSplit | null {
  const sum: RssSplit = { anon: 0, file: 0 };
  let any = false;
  for (const p of pids) {
    const one = statusSplit(p);
    if (!one) continue;
    sum.anon += one.anon;
    sum.file += one.file;
    any = true;
  }
  return any ? sum : null;
}

/** pid plus every descendant (nginx master + worker, a runtime that forks workers). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  try {
    for (const d of readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        const list = children.get(ppid) ?? [];
        list.push(Number(d));
        children.set(ppid, list);
      } catch {}
    }
  } catch {
    return [pid];
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length && out.length < 1000) {
    const p = stack.pop() as number;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Sum of one /proc/<pid>/status field over the tree, in bytes (null when /proc is unavailable). */
function treeSum(pids: number[], field: "VmRSS" | "VmHWM"): number | null {
  let sum = 0;
  let any = false;
  for (const p of pids) {
    const kb = statusKb(p, field);
    if (kb !== null) {
      sum += kb;
      any = true;
    }
  }
  return any ? sum * 1024 : null;
}

/** Sum of VmRSS over the tree, in bytes (null when /proc is unavailable). */
export function treeRss(pids: number[]): number | null {
  return treeSum(pids, "VmRSS");
}

/** Sum of VmHWM (per-process peaks) over the tree, in bytes. */
export function treeHwm(pids: number[]): number | null {
  return treeSum(pids, "VmHWM");
}

/** Reset VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`); false when not permitted. */
export function resetHwm(pids: number[]): boolean {
  let ok = true;
  for (const p of pids) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, "5");
    } catch {
      ok = false;
    }
  }
  return ok;
}

export interface RssSample {
  /** Seconds since sampling started. */
  t: number;
  rss: number;
  /** The split of `rss`, read right after it (the two reads are microseconds apart). */
  split?: RssSplit;
}

/**
 * Whether RSS stayed flat over a run: the mean of its last quarter against that of its second
 * (the first is start-up: connections being made, caches filling), allowing 10 MiB or 10%.
 * The slow-reader table's rule (bench/run.ts) and bench/heap.ts's.
 */
export function rssTrend(samples: RssSample[]): { mid: number; last: number; flat: boolean } {
  const end = samples.at(-1)?.t ?? 0;
  const window = (a: number, b: number) => {
    const xs = samples.filter((s) => s.t >= a * end && s.t <= b * end).map((s) => s.rss);
    return xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : NaN;
  };
  const mid = window(0.25, 0.5);
  const last = window(0.75, 1);
  const growth = last - mid;
  return { mid, last, flat: Number.isFinite(growth) ? growth <= Math.max(10 * 2 ** 20, 0.1 * mid) : false };
}

export class RssSampler {
  readonly samples: RssSample[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  private t0 = 0;
  private pids: number[];
  constructor(rootPid: number, private everyMs = 200) {
    this.pids = processTree(rootPid);
  }
  start(): void {
    this.t0 = performance.now();
    const tick = () => {
      const rss = treeRss(this.pids);
      const split = treeRssSplit(this.pids) ?? undefined;
      if (rss !== null) this.samples.push({ t: (performance.now() - this.t0) / 1000, rss, split });
    };
    tick();
    this.timer = setInterval(tick, this.everyMs);
  }
  stop(): RssSample[] {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const rss = treeRss(this.pids);
    if (rss !== null) this.samples.push({ t: (performance.now() - this.t0) / 1000, rss });
    return this.samples;
  }
  get tree(): number[] {
    return this.pids;
  }
}

/** CPU time (user + system, clock ticks) used so far by a process tree. */
export function treeCpuTicks(pids: number[]): number {
  let sum = 0;
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      sum += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return sum;
}

/**
 * Wait until a server has stopped burning CPU (e.g. FastAPI generators still draining after the
 * load generator hung up), so it cannot steal the shared core from the next target's measurement.
 * Bounded by `maxMs`; returns false if it was still busy then.
 */
export async function waitIdle(rootPid: number, maxMs = 5000): Promise<boolean> {
  const pids = processTree(rootPid);
  const deadline = performance.now() + maxMs;
  let last = treeCpuTicks(pids);
  let quiet = 0;
  while (performance.now() < deadline) {
    await Bun.sleep(50);
    const now = treeCpuTicks(pids);
    quiet = now - last <= 1 ? quiet + 1 : 0;
    last = now;
    if (quiet >= 2) return true;
  }
  return false;
}

function procTicks(pid: number | "self", withChildren: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0);
  } catch {
    return 0;
  }
}

function machineBusyTicks(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * How much CPU other processes on the machine used during a measurement: all busy time minus the
 * server's tree and this harness (whose reaped children, the load generators, count in its
 * cutime/cstime). Returned as a share of the machine (0..1). Linux only; 0 elsewhere.
 */
export class NoiseMeter {
  private t0 = 0;
  private busy0 = 0;
  private ours0 = 0;
  private pids: number[] = [];
  private server0 = 0;
  start(serverPid: number): void {
    this.pids = processTree(serverPid);
    this.t0 = performance.now();
    this.busy0 = machineBusyTicks();
    this.ours0 = this.ours();
    this.server0 = this.serverTicks();
  }
  /** The server's live processes only (nginx's worker, Spool's WORKERS), not what they reaped. */
  private serverTicks(): number {
    return this.pids.reduce((s, p) => s + procTicks(p, false), 0);
  }
  /** CPU seconds the server's processes used since start() (USER_HZ ticks: 10 ms resolution). */
  serverSeconds(): number {
    return (this.serverTicks() - this.server0) / 100;
  }
  private ours(): number {
    return this.pids.reduce((s, p) => s + procTicks(p, true), 0) + procTicks("self", true);
  }
  stop(): number {
    const seconds = (performance.now() - this.t0) / 1000;
    const foreign = machineBusyTicks() - this.busy0 - (this.ours() - this.ours0);
    const capacity = seconds * 100 * navigator.hardwareConcurrency; // USER_HZ is 100 on Linux
    return capacity > 0 ? Math.max(0, Math.min(1, foreign / capacity)) : 0;
  }
}
