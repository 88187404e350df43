/**
 * Reports: latest.json (everything, every round), latest.md (tables with ratios vs nginx and bare
 * Bun measured in the same run) and latest.svg (a hand-written bar chart, no chart library).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import type { CheckReport } from "./checks.ts";
import type { MachineInfo } from "./machine.ts";
import type { SlowResult } from "./slow-readers.ts";
import { TARGET_LABELS, TARGET_ORDER, type NginxTuning, type TargetId } from "./targets.ts";
import type { LoadResult } from "./load.ts";
import { BENCH_DIR, REPO_ROOT, median } from "./util.ts";
import { CLIP_GOAL, CLIP_WORKLOADS, METRICS_GOAL, SIGNED_GOAL, type Cell, type Mode } from "./workloads.ts";

export interface TargetSummary {
  id: TargetId;
  label: string;
  required: boolean;
  status: "ok" | "failed" | "skipped";
  reason?: string;
  version?: string;
  notes?: string[];
  checks?: CheckReport;
}

export interface WorkloadResult {
  id: string;
  title: string;
  short?: string;
  group: "throughput" | "concurrency" | "sweep" | "api" | "library";
  file: string;
  fileLabel: string;
  connections: number;
  rangeLen?: number;
  metric: "rps" | "gibps";
  /**
   * The workload this one is compared with (the signed workload: `range64k`). Measured in the
   * same rounds, next to the same target's run there, with the same ranges.
   */
  relativeTo?: string;
  cells: Partial<Record<TargetId, Cell>>;
  /** A time clip's query (`?start=&end=`), and each target's clip length in bytes (they differ). */
  query?: string;
  clipBytes?: Partial<Record<TargetId, number>>;
  /** Spool's RAM tier over the timed rounds (the player-start mix), from /metrics before and after. */
  tier?: Partial<Record<TargetId, TierDelta>>;
}

/** The RAM tier between two scrapes of Spool's /metrics (null: not exposed). */
export interface TierDelta {
  hits: number | null;
  misses: number | null;
  evictions: number | null;
  bytesBefore: number | null;
  bytesAfter: number | null;
}

/** The player-start mix's library and list, as run (bench/lib/player-mix.ts). */
export interface MixInfo {
  videos: number;
  totalBytes: number;
  minBytes: number;
  maxBytes: number;
  zipfS: number;
  /** Share of the starts that go to the ten most popular videos. */
  top10Share: number;
  /** The second request of a start: `bytes=0-(headBytes-1)`. */
  headBytes: number;
  requestsPerStart: number;
}

/** The film of the film clip workloads, as run. */
export interface FilmInfo {
  label: string;
  size: number;
  duration: number;
  /** Bytes of its `moov` box: what nginx's mp4 module reads and parses on every clip request. */
  moovBytes: number;
}

export interface SlowCell {
  peakRss: number;
  baselineRss: number;
  hwm: number | null;
  rssMidMean: number;
  rssLastMean: number;
  flat: boolean;
  /** [seconds, MiB] */
  samples: [number, number][];
  result?: SlowResult;
  error?: string;
  /** Spool: bytes its RAM tier held (spool_memory_tier_bytes) before the readers started and after they stopped. */
  tierBytesBefore?: number;
  tierBytesAfter?: number;
  /** Spool: bytes of parsed `moov`s and clip headers held (spool_clip_header_cache_bytes), before and after. */
  clipHeaderBytesBefore?: number;
  clipHeaderBytesAfter?: number;
  /** The highest RSS sample and its split into private (anon + shmem) and file-backed pages (bench/lib/rss.ts). */
  peakSplit?: { rss: number; anon: number; file: number };
}

/**
 * The RAM tier bytes to count out of a slow-reader peak: the smaller of the two readings (the
 * tier could only have grown between them), so "Peak RSS − tier" never flatters. Null when the
 * target has no tier metrics.
 */
export function tierBytesOf(c: SlowCell): number | null {
  return smallerReading(c.tierBytesBefore, c.tierBytesAfter);
}

/** The clip header cache's bytes to count out of the private memory, read as the tier's are. */
export function clipHeaderBytesOf(c: SlowCell): number | null {
  return smallerReading(c.clipHeaderBytesBefore, c.clipHeaderBytesAfter);
}

function smallerReading(...readings: (number | undefined)[]): number | null {
  const xs = readings.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  return xs.length ? Math.min(...xs) : null;
}

export interface Goal {
  text: string;
  ok: boolean | null;
  detail?: string;
}

export interface SuiteResult {
  schema: 1;
  mode: Mode;
  startedAt: string;
  finishedAt: string;
  elapsedS: number;
  machine: MachineInfo;
  config: {
    rounds: number;
    durationS: number;
    generator: string;
    slowReaders: number;
    slowSeconds: number;
    slowRateBps: number;
    nginxTuning: NginxTuning;
  };
  media: { key: string; label: string; size: number; sparse: boolean }[];
  targets: TargetSummary[];
  workloads: WorkloadResult[];
  slow: Partial<Record<TargetId, SlowCell>>;
  /** Present when the player-start mix ran. */
  mix?: MixInfo;
  /** Present when the film's clip workloads ran: the two-hour MP4 they cut (bench/lib/media.ts ensureFilm). */
  film?: FilmInfo;
  goals: Goal[];
  notes: string[];
}

const MiBf = (n: number) => n / 2 ** 20;

function value(w: WorkloadResult, c: Cell | undefined): number {
  if (!c || !c.rounds.length) return NaN;
  return w.metric === "gibps" ? c.gibps : c.rps;
}

function roundValue(w: WorkloadResult, r: LoadResult): number {
  return w.metric === "gibps" ? r.bytes / r.durationS / 2 ** 30 : r.rps;
}

/**
 * a ÷ b as the median of the per-round ratios: within a round the targets run back to back, so
 * a slow phase of the machine (a neighbour on the host, a busy disk) hits both sides of a pair,
 * where a ratio of two medians can pick one side's slow rounds. Results without round numbers
 * (older JSON) fall back to the ratio of the medians.
 */
export function ratio(w: WorkloadResult, a: TargetId, b: TargetId): number {
  return crossRatio(w, a, w, b);
}

/**
 * Target `a` on workload `wa` ÷ target `b` on workload `wb`, paired by round the same way: for a
 * workload measured inside another's rounds (`relativeTo`), round r of both ran back to back with
 * the same seeded ranges.
 */
export function crossRatio(wa: WorkloadResult, a: TargetId, wb: WorkloadResult, b: TargetId): number {
  const ca = wa.cells[a];
  const cb = wb.cells[b];
  const paired = pairedRatio(ca, cb, (r) => roundValue(wa, r), (r) => roundValue(wb, r));
  return Number.isFinite(paired) ? paired : value(wa, ca) / value(wb, cb);
}

/** The median over rounds of `of(a's round r) ÷ ofB(b's round r)`, for rounds both measured; NaN when none. */
function pairedRatio(ca: Cell | undefined, cb: Cell | undefined, of: (r: LoadResult) => number, ofB = of): number {
  const pairs: number[] = [];
  for (const ra of ca?.rounds ?? []) {
    const rb = ra.round === undefined ? undefined : cb?.rounds.find((x) => x.round === ra.round);
    if (rb) pairs.push(of(ra) / ofB(rb));
  }
  return median(pairs.filter(Number.isFinite));
}

/** The server's CPU time per answer in one timed run (µs), when it was measured. */
function cpuPerAnswer(r: LoadResult): number {
  return r.serverCpuS !== undefined && r.requests > 0 ? (r.serverCpuS * 1e6) / r.requests : NaN;
}

function cpuOf(c: Cell | undefined): number {
  return median((c?.rounds ?? []).map(cpuPerAnswer).filter(Number.isFinite));
}

/** a's CPU per answer ÷ b's, the median of the per-round ratios (as `ratio`). */
function cpuRatio(w: WorkloadResult, a: TargetId, b: TargetId): number {
  return pairedRatio(w.cells[a], w.cells[b], cpuPerAnswer);
}

function fmtUs(v: number): string {
  if (!Number.isFinite(v)) return "–";
  if (v >= 10_000) return `${(v / 1000).toFixed(1)} ms`;
  return v.toFixed(v >= 100 ? 0 : 1);
}

/**
 * The signed workload (Spool only) and its ratio to a public row measured in the same rounds: the
 * public twin (a copy with the same history in Spool's caches) when it ran, else the main copy's
 * row (results from before the twin existed).
 */
function signedVsPublic(s: SuiteResult): { w: WorkloadResult; ref: WorkloadResult | undefined; r: number; twin: boolean } | null {
  const w = s.workloads.find((x) => x.id === "signed");
  if (!w) return null;
  const twin = s.workloads.find((x) => x.id === "twin" && x.cells.spool?.rounds.length);
  const ref = twin ?? (w.relativeTo ? s.workloads.find((x) => x.id === w.relativeTo) : undefined);
  return { w, ref, r: ref ? crossRatio(w, "spool", ref, "spool") : NaN, twin: twin !== undefined };
}

/** Spool's CPU per answer on the signed workload ÷ on its reference row, paired by round (NaN without CPU figures). */
function signedCpuRatio(sg: { w: WorkloadResult; ref: WorkloadResult | undefined }): number {
  return sg.ref ? pairedRatio(sg.w.cells.spool, sg.ref.cells.spool, cpuPerAnswer) : NaN;
}

const NOMETRICS: TargetId = "spool-nometrics";

/** Spool ÷ Spool (METRICS=0) on each workload both ran (paired by round), when that target ran. */
function metricsCost(s: SuiteResult): { w: WorkloadResult; r: number }[] | null {
  if (!s.targets.some((t) => t.id === NOMETRICS)) return null;
  return s.workloads.filter((w) => w.cells[NOMETRICS]?.rounds.length).map((w) => ({ w, r: ratio(w, "spool", NOMETRICS) }));
}

const POSTGRES: TargetId = "spool-pg";

/** Spool (PostgreSQL) ÷ Spool (SQLite) on each workload both ran (paired by round), when that target ran. */
function postgresRatio(s: SuiteResult): { w: WorkloadResult; r: number }[] | null {
  if (!s.targets.some((t) => t.id === POSTGRES)) return null;
  return s.workloads.filter((w) => w.cells[POSTGRES]?.rounds.length).map((w) => ({ w, r: ratio(w, POSTGRES, "spool") }));
}

const MEMORY_PEER: TargetId = "bun-memory";

/**
 * Bun's ceiling for an answer from memory, on each workload bare Bun (memory) ran: it ÷ nginx,
 * and Spool ÷ it (paired by round), when that target ran.
 */
function memoryCeiling(s: SuiteResult): { w: WorkloadResult; vsNginx: number; spool: number }[] {
  if (!s.targets.some((t) => t.id === MEMORY_PEER && t.status === "ok")) return [];
  return s.workloads
    .filter((w) => w.cells[MEMORY_PEER]?.rounds.length)
    .map((w) => ({ w, vsNginx: ratio(w, MEMORY_PEER, "nginx"), spool: ratio(w, "spool", MEMORY_PEER) }));
}

const plainTitle = (w: WorkloadResult) => w.title.replace(/`/g, "");

/**
 * Spool ÷ nginx on the clip workloads of one file (the main video's or the film's), paired by
 * round; for whole clips also the ratio of MiB/s (the two clips may differ by a few hundred
 * bytes: both are frame-exact, nginx with `mp4_start_key_frame on`, but their headers differ).
 */
function clipRatios(s: SuiteResult, which: keyof typeof CLIP_WORKLOADS): { w: WorkloadResult; r: number; mib: number }[] {
  const ids: readonly string[] = CLIP_WORKLOADS[which];
  return s.workloads
    .filter((w) => ids.includes(w.id) && w.cells.spool?.rounds.length && w.cells.nginx?.rounds.length)
    .map((w) => {
      const pairs: number[] = [];
      for (const a of w.cells.spool?.rounds ?? []) {
        const b = w.cells.nginx?.rounds.find((x) => x.round === a.round);
        if (b && b.mibps > 0) pairs.push(a.mibps / b.mibps);
      }
      return { w, r: ratio(w, "spool", "nginx"), mib: median(pairs) };
    })
    .filter((x) => Number.isFinite(x.r));
}

const clipFileText = (s: SuiteResult, which: keyof typeof CLIP_WORKLOADS): string => {
  if (which === "film") {
    const f = s.film;
    return f ? `the film (${f.label}, a ${(f.moovBytes / 2 ** 20).toFixed(1)} MiB \`moov\` that nginx reads and parses on every request)` : "the film";
  }
  const m = s.media.find((x) => x.key === "main");
  return `the main video (${m ? m.label : "main"}, a small \`moov\`: a whole clip is bound by sending its megabytes)`;
};

const kb = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(0)} kB`);

/** "whole 2 s clips 3.10× (Spool's clip 312 kB, nginx's 251 kB; 3.9× in MiB/s), 64 KiB ranges inside it 2.00×" */
function clipDetail(rows: { w: WorkloadResult; r: number; mib: number }[], bold = false): string {
  const b = (r: number) => (bold ? `**${fmtRatio(r)}**` : fmtRatio(r));
  return rows
    .map(({ w, r, mib }) =>
      w.rangeLen === undefined
        ? `whole 2 s clips ${b(r)} (${w.clipBytes?.spool !== undefined && w.clipBytes.nginx !== undefined ? `Spool's clip ${kb(w.clipBytes.spool)}, nginx's ${kb(w.clipBytes.nginx)}; ` : ""}${fmtRatio(mib)} in MiB/s)`
        : `64 KiB ranges inside the clip ${b(r)}`,
    )
    .join(", ");
}

function fmtNum(w: WorkloadResult, v: number): string {
  if (!Number.isFinite(v)) return "–";
  if (w.metric === "gibps") return `${v.toFixed(2)} GiB/s`;
  if (v >= 100_000) return `${(v / 1000).toFixed(0)}k`;
  if (v >= 10_000) return `${(v / 1000).toFixed(1)}k`;
  if (v >= 1000) return `${(v / 1000).toFixed(2)}k`;
  return v.toFixed(v >= 100 ? 0 : 1);
}

function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return "–";
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

const ms = (us: number) => (Number.isFinite(us) ? (us / 1000 >= 100 ? (us / 1000).toFixed(0) : (us / 1000).toFixed(2)) : "–");

// ---------------------------------------------------------------------------------------------
// Goals (Spool's targets from the issue; the benchmark reports them, tests never time anything)
// ---------------------------------------------------------------------------------------------

export function evaluateGoals(s: SuiteResult): Goal[] {
  const spoolOk = s.targets.find((t) => t.id === "spool")?.status === "ok";
  if (!spoolOk) return [{ text: "Spool targets", ok: null, detail: "Spool did not run (see Targets)" }];
  if (s.mode === "smoke") return [{ text: "Spool targets", ok: null, detail: "not evaluated in smoke runs (1 s of light load checks plumbing, not speed)" }];
  const goals: Goal[] = [];
  const vsBun = s.workloads
    .map((w) => ({ w, r: ratio(w, "spool", "bun") }))
    .filter((x) => Number.isFinite(x.r));
  if (vsBun.length) {
    const worst = vsBun.reduce((a, b) => (b.r < a.r ? b : a));
    const misses = vsBun.filter((x) => x.r < 0.9).map((x) => `${x.w.title.replace(/`/g, "")} ${fmtRatio(x.r)}`);
    goals.push({
      text: "Every workload at or above 0.9× bare Bun.serve",
      ok: misses.length === 0,
      detail: misses.length ? `below: ${misses.join(", ")}` : `lowest ${fmtRatio(worst.r)} (${worst.w.title.replace(/`/g, "")})`,
    });
  } else goals.push({ text: "Every workload at or above 0.9× bare Bun.serve", ok: null, detail: "bare Bun.serve did not run" });
  const r64 = s.workloads.find((w) => w.id === "range64k");
  for (const peer of ["express", "fastapi"] as const) {
    const r = r64 ? ratio(r64, "spool", peer) : NaN;
    goals.push({
      text: `At least 5× ${TARGET_LABELS[peer]} on random 64 KiB ranges`,
      ok: Number.isFinite(r) ? r >= 5 : null,
      detail: Number.isFinite(r) ? fmtRatio(r) : `${TARGET_LABELS[peer]} did not run`,
    });
  }
  const sg = signedVsPublic(s);
  if (sg) {
    const text = `Signed playback (\`?token=\`) at or above ${SIGNED_GOAL}× Spool's public random 64 KiB ranges`;
    goals.push(
      Number.isFinite(sg.r)
        ? { text, ok: sg.r >= SIGNED_GOAL, detail: `${fmtRatio(sg.r)} (${fmtNum(sg.w, value(sg.w, sg.w.cells.spool))} vs ${fmtNum(sg.w, value(sg.ref as WorkloadResult, sg.ref?.cells.spool))} req/s${sg.twin ? " on the public twin" : ""})` }
        : { text, ok: null, detail: sg.ref ? "Spool's signed or public row has no measurement" : "the public 64 KiB range workload was not measured in this run" },
    );
  }
  const mc = metricsCost(s);
  if (mc) {
    const text = `Metrics cost: Spool at or above ${METRICS_GOAL}× Spool (METRICS=0) on random 64 KiB ranges and \`bytes=0-1\` probes, same run`;
    const measured = mc.filter((x) => Number.isFinite(x.r));
    const missing = ["range64k", "probe"].filter((id) => !measured.some((x) => x.w.id === id));
    const detail = measured.map((x) => `${plainTitle(x.w)} ${fmtRatio(x.r)}`).join(", ");
    goals.push(
      measured.length
        ? {
            text,
            // A miss on one workload is a miss; all met but one not measured is undecided.
            ok: !measured.every((x) => x.r >= METRICS_GOAL) ? false : missing.length ? null : true,
            detail: `${detail}${missing.length ? `; not measured in this run: ${missing.join(", ")}` : ""}`,
          }
        : { text, ok: null, detail: s.targets.find((t) => t.id === NOMETRICS)?.status === "ok" ? "neither workload was measured in this run" : "Spool (METRICS=0) did not run (see Targets)" },
    );
  }
  // Issue 13's clip goal, judged apart on the film (what clips are for: a long video, a big
  // `moov`) and on the main video (a small `moov`: whole clips are bound by sending the bytes).
  for (const which of ["film", "main"] as const) {
    const rows = clipRatios(s, which);
    if (!rows.length) continue;
    goals.push({
      text: `Clips on ${clipFileText(s, which)} at or above ${CLIP_GOAL}× nginx's mp4 module`,
      ok: rows.every((x) => x.r >= CLIP_GOAL),
      detail: clipDetail(rows),
    });
  }
  const sc = s.slow.spool;
  if (sc && s.config.slowReaders >= 1000) {
    goals.push({
      text: `Peak RSS under 150 MiB with ${s.config.slowReaders.toLocaleString("en-US")} slow readers, flat over the run`,
      ok: MiBf(sc.peakRss) < 150 && sc.flat,
      detail: `peak ${MiBf(sc.peakRss).toFixed(1)} MiB${tierBytesOf(sc) !== null ? ` (${MiBf(sc.peakRss - (tierBytesOf(sc) as number)).toFixed(1)} MiB without the RAM tier's ${MiBf(tierBytesOf(sc) as number).toFixed(1)} MiB)` : ""}, ${sc.flat ? "flat" : "growing"} (${MiBf(sc.rssMidMean).toFixed(1)} → ${MiBf(sc.rssLastMean).toFixed(1)} MiB)`,
    });
  } else {
    goals.push({ text: "Peak RSS under 150 MiB with 1,000 slow readers, flat", ok: null, detail: sc ? `only ${s.config.slowReaders} readers in this mode` : "not measured" });
  }
  return goals;
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

function versionsLine(s: SuiteResult): string {
  const parts: string[] = [];
  for (const t of s.targets) if (t.version) parts.push(`${t.label}: ${t.version}`);
  const v = s.machine.versions;
  const tools = [v.wrk ? `wrk ${v.wrk}` : null, `autocannon ${v.autocannon}`, v.ffmpeg ? `ffmpeg ${v.ffmpeg}` : null].filter(Boolean);
  return `${parts.join(" · ")} · load: ${tools.join(", ")}`;
}

export function renderMarkdown(s: SuiteResult, svgRel = "latest.svg"): string {
  const out: string[] = [];
  const present = TARGET_ORDER.filter((id) => s.targets.some((t) => t.id === id && t.status === "ok"));
  const date = s.startedAt.slice(0, 16).replace("T", " ");
  out.push(`### Spool benchmark (${s.mode} run, ${date} UTC)`);
  out.push("");
  out.push(
    `**Machine:** ${s.machine.cpu}, ${s.machine.cores} cores, ${s.machine.memGiB} GiB, ${s.machine.os}, Linux ${s.machine.kernel}; ${s.machine.pinning}.  `,
  );
  out.push(`**Versions:** ${versionsLine(s)}.  `);
  out.push(
    `**Method:** median of ${s.config.rounds} round(s) × ${s.config.durationS} s per target and workload, targets interleaved A/B/A/B (order rotated each round), ratios the median of the per-round ratios, the same seeded ranges for every target, every target's answers checked (206, exact bytes, headers) before timing. File workloads: ${s.config.generator} (1 thread, keep-alive); JSON API: autocannon; slow readers: a Bun raw-socket client.`,
  );
  out.push("");
  if (svgRel) out.push(`![Spool benchmark chart](${svgRel})`, "");

  const cols = present.map((id) => TARGET_LABELS[id]);
  // The concurrency and size-sweep tables compare the peers; Spool (METRICS=0) and bare Bun
  // (memory) run neither.
  const peers = present.filter((id) => id !== NOMETRICS && id !== MEMORY_PEER);
  const peerCols = peers.map((id) => TARGET_LABELS[id]);
  const ratioCols: [TargetId, TargetId, string][] = [];
  if (present.includes("spool")) {
    for (const other of ["bun", "nginx", "express", "fastapi", NOMETRICS] as const) if (present.includes(other)) ratioCols.push(["spool", other, `Spool ÷ ${other === "bun" ? "Bun" : TARGET_LABELS[other]}`]);
  }
  const flagged: string[] = [];
  const cellText = (w: WorkloadResult, id: TargetId) => {
    const c = w.cells[id];
    if (!c) return "–";
    if (!c.rounds.length) return c.note ? "n/a" : "–";
    let txt = fmtNum(w, value(w, c));
    if (!c.sane) {
      flagged.push(`${w.title} / ${TARGET_LABELS[id]}: ${c.note ?? "suspicious"}`);
      txt += ` ⚠${flagged.length}`;
    }
    return txt;
  };

  const throughput = s.workloads.filter((w) => w.group === "throughput" || w.group === "api");
  if (throughput.length) {
    out.push("#### Throughput (requests/s unless stated; higher is better)", "");
    const rc = (xs: string[]) => (xs.length ? ` ${xs.join(" | ")} |` : "");
    out.push(`| Workload | ${cols.join(" | ")} |${rc(ratioCols.map((r) => r[2]))} Generator |`);
    out.push(`|---|${cols.map(() => "---:").join("|")}|${ratioCols.map(() => "---:|").join("")}---|`);
    for (const w of throughput) {
      const gen = [...new Set(Object.values(w.cells).map((c) => c?.generator).filter((g): g is string => !!g))].join(", ");
      const title = `${w.title}${w.metric === "gibps" ? " (GiB/s)" : ""}, c=${w.connections}`;
      out.push(`| ${title} | ${present.map((id) => cellText(w, id)).join(" | ")} |${rc(ratioCols.map(([a, b]) => fmtRatio(ratio(w, a, b))))} ${gen || "–"} |`);
    }
    out.push("");
    const sg = signedVsPublic(s);
    if (sg && sg.ref) {
      out.push(
        `Signed video (Spool only, \`?token=<JWT>\` on every request): **${fmtRatio(sg.r)}** Spool's public "${sg.ref.title}, c=${sg.ref.connections}" row, the same ranges measured back to back in each round (median of the per-round ratios; goal ≥ ${SIGNED_GOAL}×)${
          Number.isFinite(signedCpuRatio(sg)) ? `; in server CPU per answer, signed costs ${fmtRatio(signedCpuRatio(sg))} what public does` : ""
        }${
          sg.twin
            ? ". The twin is a third copy of the main video, public, ingested beside the signed one and read by no other workload, so both have the same history in Spool's caches (a kept descriptor each; the main copy's own row, measured in the same rounds, is above)"
            : ""
        }.`,
        "",
      );
    }
    const pg = postgresRatio(s)?.filter((x) => Number.isFinite(x.r));
    if (pg?.length) {
      out.push(
        `PostgreSQL (Spool (PostgreSQL) ÷ Spool on SQLite, the same files and rows, measured back to back in each round): ${pg.map((x) => `**${fmtRatio(x.r)}** on ${x.w.title}`).join(", ")} (median of the per-round ratios; the stream path does no database work per request, so ~1× is expected there).`,
        "",
      );
    }
    const ceiling = memoryCeiling(s);
    if (ceiling.length) {
      out.push(
        `Bun's ceiling for an answer from memory (bare Bun (memory): the main video read into one Blob at start, a slice of it per range, the kind of answer Spool's RAM tier gives): ${ceiling.map((x) => `${plainTitle(x.w)} **${fmtRatio(x.vsNginx)}** nginx (Spool ÷ it: ${fmtRatio(x.spool)})`).join(", ")} (median of the per-round ratios). Where this ceiling is below a goal against nginx, Bun ${s.targets.find((t) => t.id === MEMORY_PEER)?.version?.replace(/^Bun /, "") ?? ""} cannot meet that goal with any code in front of it.`,
        "",
      );
    }
    const clips = (["film", "main"] as const).map((which) => ({ which, rows: clipRatios(s, which) })).filter((x) => x.rows.length);
    if (clips.length) {
      out.push(
        `Clips, Spool ÷ nginx (median of the per-round ratios; goal ≥ ${CLIP_GOAL}×): ${clips.map((c) => `on ${clipFileText(s, c.which)}: ${clipDetail(c.rows, true)}`).join("; ")}.${clips.some((c) => c.rows.some((x) => x.w.clipBytes)) ? " Spool answers whole clips from the clip it kept as a file (checked before timing) and caches the clip's header; nginx cuts each request anew." : ""} Both servers send frame-exact clips (nginx with \`mp4_start_key_frame on\`: from the key frame before \`start\`, the frames before it hidden by an edit list).`,
        "",
      );
    }
    const mc = metricsCost(s)?.filter((x) => Number.isFinite(x.r));
    if (mc?.length) {
      out.push(
        `Metrics cost (Spool ÷ Spool (METRICS=0), the same server and files with \`METRICS=0\`, measured back to back in each round): ${mc.map((x) => `**${fmtRatio(x.r)}** on ${x.w.title}`).join(", ")} (median of the per-round ratios; goal ≥ ${METRICS_GOAL}×).`,
        "",
      );
    }
  }

  // The same runs as the throughput table, as a cost: other load on the machine slows a rate
  // more than it changes what one answer costs the server.
  const costed = throughput.filter((w) => present.some((id) => Number.isFinite(cpuOf(w.cells[id]))));
  if (costed.length) {
    const cpuRatios = ratioCols.filter(([, b]) => b === "bun" || b === "nginx");
    out.push("#### Server CPU per answer (µs unless stated; lower is better)", "");
    out.push(
      "The CPU time (user + system) of the server's processes during each timed run above ÷ the answers it gave (10 ms clock ticks over runs of thousands of answers), median over rounds; ratios are the median of the per-round ratios, below 1× where Spool spends less. A rate moves with whatever else the machine runs; what an answer costs the server moves much less.",
      "",
    );
    out.push(`| Workload | ${cols.join(" | ")} |${cpuRatios.map((r) => ` ${r[2]} |`).join("")}`);
    out.push(`|---|${cols.map(() => "---:").join("|")}|${cpuRatios.map(() => "---:|").join("")}`);
    for (const w of costed) {
      out.push(`| ${w.title}, c=${w.connections} | ${present.map((id) => fmtUs(cpuOf(w.cells[id]))).join(" | ")} |${cpuRatios.map(([a, b]) => ` ${fmtRatio(cpuRatio(w, a, b))} |`).join("")}`);
    }
    out.push("");
  }

  const conc = ["c1", "range64k", "c256"].map((id) => s.workloads.find((w) => w.id === id)).filter((w): w is WorkloadResult => !!w);
  if (conc.length > 1) {
    out.push("#### Latency vs connections, random 64 KiB ranges (p50 / p99 ms, and req/s)", "");
    out.push(`| Connections | ${peerCols.join(" | ")} | Spool ÷ Bun (req/s) |`);
    out.push(`|---:|${peerCols.map(() => "---:").join("|")}|---:|`);
    for (const w of conc) {
      const cells = peers.map((id) => {
        const c = w.cells[id];
        return c && c.rounds.length ? `${ms(c.p50us)} / ${ms(c.p99us)} (${cellText(w, id)})` : "–";
      });
      out.push(`| ${w.connections} | ${cells.join(" | ")} | ${fmtRatio(ratio(w, "spool", "bun"))} |`);
    }
    out.push("");
  }

  const sweep = s.workloads.filter((w) => w.group === "sweep" || w.id === "range64k");
  if (s.workloads.some((w) => w.group === "sweep")) {
    const sorted = [...sweep].sort((a, b) => (s.media.find((m) => m.key === a.file)?.size ?? 0) - (s.media.find((m) => m.key === b.file)?.size ?? 0));
    out.push("#### Size sweep: random 64 KiB ranges, c=64 (req/s; should not depend on file size)", "");
    out.push(`| File | ${peerCols.join(" | ")} | Spool ÷ Bun |`);
    out.push(`|---|${peerCols.map(() => "---:").join("|")}|---:|`);
    for (const w of sorted) out.push(`| ${w.fileLabel} | ${peers.map((id) => cellText(w, id)).join(" | ")} | ${fmtRatio(ratio(w, "spool", "bun"))} |`);
    out.push("");
  }

  for (const w of s.workloads.filter((x) => x.group === "library")) {
    const ids = peers.filter((id) => w.cells[id]);
    out.push(`#### ${plainTitle(w)}, c=${w.connections} (requests/s, latency in ms)`, "");
    out.push("| Target | Requests/s | p50 ms | p99 ms | MiB/s | Spool ÷ this (req/s) |");
    out.push("|---|---:|---:|---:|---:|---:|");
    for (const id of ids) {
      const c = w.cells[id] as Cell;
      const has = c.rounds.length > 0;
      const mibps = median(c.rounds.map((r) => r.mibps));
      out.push(
        `| ${TARGET_LABELS[id]} | ${cellText(w, id)} | ${has ? ms(c.p50us) : "–"} | ${has ? ms(c.p99us) : "–"} | ${has ? mibps.toFixed(0) : "–"} | ${id === "spool" ? "–" : fmtRatio(ratio(w, "spool", id))} |`,
      );
    }
    out.push("");
    const vsNginx = ratio(w, "spool", "nginx");
    const m = s.mix;
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    const parts: string[] = [];
    if (Number.isFinite(vsNginx)) parts.push(`Spool ÷ nginx: **${fmtRatio(vsNginx)}** (median of the per-round ratios).`);
    if (m) {
      parts.push(
        `Each player start: \`bytes=0-1\` (Safari's probe), \`bytes=0-${m.headBytes - 1}\` (the first ${m.headBytes / 1024} KiB, standing in for Chrome's \`bytes=0-\`, which a player cuts short), then 2-4 seeks of 64-256 KiB at uniform offsets (${m.requestsPerStart.toFixed(1)} requests per start); the video by Zipf popularity (s = ${m.zipfS}) over ${m.videos} videos of ${mib(m.minBytes)} to ${mib(m.maxBytes)} (${mib(m.totalBytes)} in all; the 10 most popular get ${(m.top10Share * 100).toFixed(0)}% of the starts). One seeded list per round, the same for every target.`,
      );
    }
    const td = w.tier?.spool;
    if (td && td.hits !== null && td.misses !== null) {
      const lookups = td.hits + td.misses;
      parts.push(
        `Spool's RAM tier during the timed rounds: ${lookups ? `${((td.hits / lookups) * 100).toFixed(0)}% of ${lookups.toLocaleString("en-US")} lookups hit` : "no lookups"}${td.evictions !== null ? `, ${td.evictions.toLocaleString("en-US")} evictions` : ""}${td.bytesAfter !== null ? `, ${mib(td.bytesAfter)} held at the end` : ""}.`,
      );
    }
    if (parts.length) out.push(parts.join(" "), "");
  }

  const slowIds = present.filter((id) => s.slow[id]);
  if (slowIds.length) {
    out.push(
      `#### ${s.config.slowReaders.toLocaleString("en-US")} concurrent slow readers (${(s.config.slowRateBps * 8) / 1e6} Mbit/s each, ${s.config.slowSeconds} s, one ranged GET each)`,
      "",
    );
    out.push("| Target | Peak RSS | RAM tier held | Peak RSS − RAM tier | Idle RSS before | RSS 2nd quarter → last quarter | Flat | Readers served | Median reader rate | TTFB p50 / p99 |");
    out.push("|---|---:|---:|---:|---:|---:|:---:|---:|---:|---:|");
    for (const id of slowIds) {
      const c = s.slow[id] as SlowCell;
      const r = c.result;
      const served = r ? `${r.statuses["206"] ?? 0}/${r.n}${r.closedEarly ? ` (${r.closedEarly} closed early)` : ""}` : (c.error ?? "–");
      const tier = tierBytesOf(c);
      const tierCells =
        tier === null
          ? "– | –"
          : `${MiBf(tier).toFixed(1)} MiB${c.tierBytesBefore !== undefined && c.tierBytesAfter !== undefined && c.tierBytesBefore !== c.tierBytesAfter ? ` (${MiBf(c.tierBytesBefore).toFixed(1)} → ${MiBf(c.tierBytesAfter).toFixed(1)})` : ""} | ${MiBf(c.peakRss - tier).toFixed(1)} MiB`;
      out.push(
        `| ${TARGET_LABELS[id]} | **${MiBf(c.peakRss).toFixed(1)} MiB** | ${tierCells} | ${MiBf(c.baselineRss).toFixed(1)} MiB | ${MiBf(c.rssMidMean).toFixed(1)} → ${MiBf(c.rssLastMean).toFixed(1)} MiB | ${c.flat ? "yes" : "**no**"} | ${served} | ${r ? `${(r.rateP50 / 1000).toFixed(0)} kB/s` : "–"} | ${r ? `${r.ttfbP50} / ${r.ttfbP99} ms` : "–"} |`,
      );
    }
    if (slowIds.some((id) => tierBytesOf(s.slow[id] as SlowCell) !== null)) {
      out.push(
        "",
        "RAM tier held: the bytes of file blocks Spool's RAM tier held (`spool_memory_tier_bytes` from its `/metrics`, read just before the readers start and after they stop; the smaller reading counts if they differ). They are part of the peak RSS: the tier was filled by the checks and the workloads before; the readers' long ranges go out by sendfile and do not touch it.",
      );
    }
    out.push("");
    const split = slowIds.filter((id) => (s.slow[id] as SlowCell).peakSplit);
    if (split.length) {
      out.push(
        "What the highest RSS sample was made of (MiB; /proc/<pid>/status, summed over the target's processes):",
        "",
        "| Target | RSS | File-backed pages | Private memory | of which RAM tier | of which clip headers | Private − caches |",
        "|---|---:|---:|---:|---:|---:|---:|",
      );
      for (const id of split) {
        const c = s.slow[id] as SlowCell;
        const p = c.peakSplit!;
        const tier = tierBytesOf(c);
        const clips = clipHeaderBytesOf(c);
        const cell = (x: number | null) => (x === null ? "–" : MiBf(x).toFixed(1));
        out.push(`| ${TARGET_LABELS[id]} | ${cell(p.rss)} | ${cell(p.file)} | ${cell(p.anon)} | ${cell(tier)} | ${cell(clips)} | ${cell(p.anon - (tier ?? 0) - (clips ?? 0))} |`);
      }
      out.push(
        "",
        "File-backed pages are mapped from files, almost all of them the runtime's own executable and libraries (the bun binary for Spool and bare Bun.serve): one copy in memory for every process that runs the same binary (a `WORKERS` cluster holds them once), and pages the kernel drops and reads again under memory pressure. Private memory is what each process holds alone: heaps, buffers, and Spool's two bounded caches (the RAM tier, `MEMORY_CACHE_BYTES`, and the parsed `moov`s and clip headers, `spool_clip_header_cache_bytes`, at most `CLIP_HEADER_CACHE_BYTES`), filled by the workloads before the readers.",
        "",
      );
    }
  }

  if (s.goals.length) {
    out.push("#### Spool's targets", "");
    for (const g of s.goals) out.push(`- ${g.ok === null ? "➖" : g.ok ? "✅" : "❌"} ${g.text}${g.detail ? `: ${g.detail}` : ""}`);
    out.push("");
  }

  out.push("#### Targets", "");
  out.push("| Target | Status | Checks | Version / setup |");
  out.push("|---|---|---|---|");
  for (const t of s.targets) {
    const checks = t.checks ? `${t.checks.items.filter((i) => i.ok).length}/${t.checks.items.length} passed` : "–";
    const setup = [t.version, ...(t.notes ?? [])].filter(Boolean).join("; ");
    const status = t.status === "ok" ? "ok" : `**${t.status}**: ${(t.reason ?? "").split("\n")[0]?.slice(0, 200)}`;
    out.push(`| ${t.label}${t.required ? "" : " (optional)"} | ${status} | ${checks} | ${setup.replace(/\|/g, "\\|")} |`);
  }
  out.push("");
  if (flagged.length || s.notes.length) {
    out.push("#### Notes", "");
    flagged.forEach((f, i) => out.push(`${i + 1}. ⚠ ${f}`));
    for (const n of s.notes) out.push(`- ${n}`);
    out.push("");
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// SVG (hand-written)
// ---------------------------------------------------------------------------------------------

const COLORS: Record<TargetId, string> = {
  spool: "#e4572e",
  "spool-nometrics": "#f2a488",
  "spool-pg": "#b5651d",
  nginx: "#2e8b57",
  bun: "#7a7a7a",
  "bun-memory": "#b3b3b3",
  express: "#3178c6",
  fastapi: "#8e44ad",
};

const esc = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function renderSvg(s: SuiteResult): string {
  const present = TARGET_ORDER.filter((id) => s.targets.some((t) => t.id === id && t.status === "ok"));
  const W = 1000;
  const labelW = 270;
  const rightPad = 170;
  const plotW = W - labelW - rightPad;
  const barH = 13;
  const barGap = 3;
  const groupGap = 14;
  const parts: string[] = [];
  let y = 0;
  const text = (x: number, yy: number, t: string, attrs = "") => parts.push(`<text x="${x}" y="${yy}" ${attrs}>${esc(t)}</text>`);

  // Header.
  y = 30;
  text(20, y, "Spool vs nginx, bare Bun.serve, Express 5 and FastAPI", 'font-size="20" font-weight="700"');
  y += 22;
  const date = s.startedAt.slice(0, 10);
  text(20, y, `${s.mode} run ${date} · ${s.machine.cpu}, ${s.machine.cores} cores · servers pinned to 1 core · ${s.config.generator}`, 'font-size="12" fill="#555"');
  y += 22;
  // Legend.
  let lx = 20;
  for (const id of present) {
    parts.push(`<rect x="${lx}" y="${y - 10}" width="12" height="12" rx="2" fill="${COLORS[id]}"/>`);
    text(lx + 17, y, TARGET_LABELS[id], 'font-size="13"');
    lx += 30 + TARGET_LABELS[id].length * 7.5;
  }
  y += 26;

  // Panel 1: throughput relative to bare Bun.
  const rows = s.workloads.filter((w) => Object.values(w.cells).some((c) => c && c.rounds.length));
  const base = (w: WorkloadResult): { v: number; name: string } => {
    const b = value(w, w.cells.bun);
    if (Number.isFinite(b)) return { v: b, name: "bare Bun" };
    const best = Math.max(...present.map((id) => value(w, w.cells[id])).filter(Number.isFinite));
    return { v: best, name: "best" };
  };
  // Relative to bare Bun: the same paired ratio as the tables. A workload measured inside another's
  // rounds (the signed one, Spool only) is drawn against bare Bun on that workload, paired by round.
  const rel = (w: WorkloadResult, id: TargetId): number => {
    const ref = w.relativeTo ? s.workloads.find((x) => x.id === w.relativeTo) : undefined;
    const r = ref ? crossRatio(w, id, ref, "bun") : NaN;
    if (Number.isFinite(r)) return r;
    const b = base(w);
    return b.name === "bare Bun" ? ratio(w, id, "bun") : value(w, w.cells[id]) / b.v;
  };
  let maxR = 1.2;
  for (const w of rows) for (const id of present) {
    const r = rel(w, id);
    if (Number.isFinite(r)) maxR = Math.max(maxR, r);
  }
  maxR = Math.min(4, Math.ceil(maxR * 4) / 4 + 0.05);
  const xOf = (r: number) => labelW + (Math.min(r, maxR) / maxR) * plotW;
  text(20, y, "Throughput relative to bare Bun.serve (1.0× = the runtime's ceiling; higher is better)", 'font-size="15" font-weight="600"');
  y += 12;
  const plotTop = y;
  const groupH = (w: WorkloadResult) => present.filter((id) => w.cells[id]).length * (barH + barGap) + groupGap;
  const plotBottom = plotTop + rows.reduce((a, w) => a + groupH(w), 0) + 4;
  // Grid.
  for (let g = 0; g <= maxR + 1e-9; g += maxR > 2 ? 0.5 : 0.25) {
    const x = xOf(g);
    parts.push(`<line x1="${x}" y1="${plotTop}" x2="${x}" y2="${plotBottom}" stroke="#e5e5e5"/>`);
    text(x, plotBottom + 14, `${g.toFixed(g % 1 ? 2 : 1)}×`, 'font-size="11" fill="#777" text-anchor="middle"');
  }
  parts.push(`<line x1="${xOf(1)}" y1="${plotTop}" x2="${xOf(1)}" y2="${plotBottom}" stroke="#333" stroke-width="1.5"/>`);
  parts.push(`<line x1="${xOf(0.9)}" y1="${plotTop}" x2="${xOf(0.9)}" y2="${plotBottom}" stroke="${COLORS.spool}" stroke-width="1.2" stroke-dasharray="4 3"/>`);
  text(xOf(0.9) - 4, plotTop - 2, "Spool target 0.9×", `font-size="10" fill="${COLORS.spool}" text-anchor="end"`);
  y = plotTop + 4;
  for (const w of rows) {
    const ids = present.filter((id) => w.cells[id]);
    const gh = ids.length * (barH + barGap);
    const title = (w.short ?? w.title).replace(/`/g, "");
    const sub = `${w.group === "sweep" ? "" : `c=${w.connections}, `}${w.metric === "gibps" ? "GiB/s" : "req/s"}${w.relativeTo ? ", vs Bun's public ranges" : ""}`;
    text(labelW - 10, y + gh / 2 - 1, title.length > 34 ? `${title.slice(0, 33)}…` : title, 'font-size="12.5" text-anchor="end" font-weight="600"');
    text(labelW - 10, y + gh / 2 + 13, sub, 'font-size="11" text-anchor="end" fill="#777"');
    for (const id of ids) {
      const c = w.cells[id] as Cell;
      const v = value(w, c);
      if (Number.isFinite(v)) {
        const r = rel(w, id);
        const x2 = xOf(r);
        parts.push(`<rect x="${labelW}" y="${y}" width="${Math.max(1, x2 - labelW).toFixed(1)}" height="${barH}" rx="2" fill="${COLORS[id]}"${c.sane ? "" : ' fill-opacity="0.45"'}><title>${esc(`${TARGET_LABELS[id]}: ${fmtNum(w, v)} (${fmtRatio(r)})`)}</title></rect>`);
        const over = r > maxR ? " ▶" : "";
        text(x2 + 5, y + barH - 2.5, `${fmtRatio(r)}  ${fmtNum(w, v)}${over}${c.sane ? "" : " ⚠"}`, `font-size="11" fill="${id === "spool" ? COLORS.spool : "#333"}"${id === "spool" ? ' font-weight="700"' : ""}`);
      } else {
        text(labelW + 5, y + barH - 2.5, `${TARGET_LABELS[id]}: ${c.note ?? "n/a"}`, 'font-size="11" fill="#999" font-style="italic"');
      }
      y += barH + barGap;
    }
    y += groupGap;
  }
  y = plotBottom + 34;

  // Panel 2: peak RSS under slow readers.
  const slowIds = present.filter((id) => s.slow[id]);
  if (slowIds.length) {
    text(20, y, `Peak RSS with ${s.config.slowReaders.toLocaleString("en-US")} slow readers at ${(s.config.slowRateBps * 8) / 1e6} Mbit/s (MiB; lower is better)`, 'font-size="15" font-weight="600"');
    y += 12;
    // Axis capped at 400 MiB so the interesting range stays readable; longer bars end in ▶.
    const maxM = Math.min(400, Math.max(160, ...slowIds.map((id) => MiBf((s.slow[id] as SlowCell).peakRss))) * 1.05);
    const xm = (m: number) => labelW + (Math.min(m, maxM) / maxM) * plotW;
    const top = y;
    const bottom = top + slowIds.length * (barH + barGap + 2) + 6;
    const step = maxM > 1200 ? 500 : maxM > 600 ? 200 : maxM > 300 ? 100 : 50;
    for (let g = 0; g <= maxM; g += step) {
      parts.push(`<line x1="${xm(g)}" y1="${top}" x2="${xm(g)}" y2="${bottom}" stroke="#e5e5e5"/>`);
      text(xm(g), bottom + 14, String(g), 'font-size="11" fill="#777" text-anchor="middle"');
    }
    if (s.config.slowReaders >= 1000) {
      parts.push(`<line x1="${xm(150)}" y1="${top}" x2="${xm(150)}" y2="${bottom}" stroke="${COLORS.spool}" stroke-width="1.2" stroke-dasharray="4 3"/>`);
      text(xm(150) + 4, top - 2, "Spool target 150 MiB", `font-size="10" fill="${COLORS.spool}"`);
    }
    y = top + 4;
    for (const id of slowIds) {
      const c = s.slow[id] as SlowCell;
      const m = MiBf(c.peakRss);
      text(labelW - 10, y + barH - 2.5, TARGET_LABELS[id], 'font-size="12.5" text-anchor="end" font-weight="600"');
      parts.push(`<rect x="${labelW}" y="${y}" width="${Math.max(1, xm(m) - labelW).toFixed(1)}" height="${barH}" rx="2" fill="${COLORS[id]}"/>`);
      text(xm(m) + 5, y + barH - 2.5, `${m > maxM ? "▶ " : ""}${m.toFixed(1)} MiB${c.flat ? "" : " (growing)"}`, `font-size="11" fill="${id === "spool" ? COLORS.spool : "#333"}"${id === "spool" ? ' font-weight="700"' : ""}`);
      y += barH + barGap + 2;
    }
    y = bottom + 30;
  }

  // Footer.
  const spoolT = s.targets.find((t) => t.id === "spool");
  if (spoolT && spoolT.status !== "ok") {
    text(20, y, `Spool: ${spoolT.status} (${(spoolT.reason ?? "").split("\n")[0]?.slice(0, 120)})`, `font-size="12" fill="${COLORS.spool}"`);
    y += 18;
  }
  const noisy = s.notes.some((n) => n.startsWith("Other processes"));
  if (noisy) {
    text(20, y, "⚠ Other processes competed for the CPUs during this run (see Notes in latest.md): treat small differences as noise.", 'font-size="12" fill="#b35900"');
    y += 18;
  }
  text(20, y, `Median of ${s.config.rounds} interleaved round(s) × ${s.config.durationS} s, ratios paired by round; faded bars ⚠ = generator saw errors or wrong sizes. Tables: bench/results/latest.md · method: bench/README.md`, 'font-size="11" fill="#777"');
  y += 14;
  const H = y + 6;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

const START = "<!-- bench:results:start -->";
const END = "<!-- bench:results:end -->";

/** Replace the marked section of a README with the table and chart (only if the markers exist). */
function updateMarked(file: string, body: string): boolean {
  if (!existsSync(file)) return false;
  const text = readFileSync(file, "utf8");
  // Markers count only alone on their line (prose may mention them in backticks).
  const a = text.search(new RegExp(`^${START}$`, "m"));
  const b = text.search(new RegExp(`^${END}$`, "m"));
  if (a < 0 || b < a) return false;
  writeFileSync(file, `${text.slice(0, a + START.length)}\n${body.trim()}\n${text.slice(b)}`);
  return true;
}

export async function writeReports(s: SuiteResult, outDir: string, base: string, updateReadme: boolean): Promise<string[]> {
  s.goals = evaluateGoals(s);
  mkdirSync(outDir, { recursive: true });
  const json = resolve(outDir, `${base}.json`);
  const md = resolve(outDir, `${base}.md`);
  const svg = resolve(outDir, `${base}.svg`);
  writeFileSync(json, `${JSON.stringify(s, null, 2)}\n`);
  writeFileSync(svg, renderSvg(s));
  writeFileSync(md, `${renderMarkdown(s, `${base}.svg`)}\n`);
  const written = [json, md, svg].map((f) => relative(REPO_ROOT, f));
  if (updateReadme) {
    const benchReadme = resolve(BENCH_DIR, "README.md");
    if (updateMarked(benchReadme, renderMarkdown(s, relative(BENCH_DIR, svg)))) written.push("bench/README.md (results section)");
    const rootReadme = resolve(REPO_ROOT, "README.md");
    if (updateMarked(rootReadme, renderMarkdown(s, relative(REPO_ROOT, svg)))) written.push("README.md (results section)");
  }
  return written;
}
