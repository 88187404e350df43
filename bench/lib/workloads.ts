/**
 * The workloads of the suite and the per-mode knobs (rounds, seconds per measurement, which
 * size-sweep files, slow-reader duration).
 */
import type { CheckReport } from "./checks.ts";
import type { LoadResult } from "./load.ts";
import { SIGNED_KEY, TWIN_KEY, type Running, type TargetId } from "./targets.ts";
import { KiB_64, MiB_1 } from "./sizes.ts";
import { FILM_RECIPES, LIBRARY_SIZE, filmSeconds } from "./media.ts";

export type Mode = "smoke" | "quick" | "full";

export interface Workload {
  id: string;
  title: string;
  /** Shorter title for the chart. */
  short?: string;
  group: "throughput" | "concurrency" | "sweep" | "api" | "library";
  /** Media key served. */
  file: string;
  /** A fixed URL path instead of the media file's (the JSON API). */
  urlPath?: string;
  /** Request `Running.paths[pathKey]` instead of the media file's URL (the signed copy); `file` still gives the size. */
  pathKey?: string;
  /**
   * The workload this one is a ratio to (Spool's row there). Its rounds are measured inside that
   * workload's rounds, right next to Spool's run, with the same seeded ranges, so the per-round
   * ratio compares two back-to-back measurements.
   */
  relativeTo?: string;
  /** `mix`: the player-start mix over the library (bench/lib/player-mix.ts); `file` is unused. */
  kind: "ranges" | "fixed" | "mix";
  rangeLen?: number;
  connections: number;
  /** Headers for `fixed` requests; null means "not applicable to this target". */
  headers?: (t: Running, check: CheckReport) => Record<string, string> | null;
  /** Headline metric for tables and the chart. */
  metric: "rps" | "gibps";
  /** Expected body bytes per response (sanity check on what the generator received). */
  expectBody: (fileSize: number) => number;
  /** The generator this workload uses (API endpoints use autocannon). */
  generator?: "autocannon";
  /** Only these targets (default: all). */
  only?: TargetId[];
  /**
   * A query appended to the media path (`?start=&end=`: a time clip). The representation is then
   * the clip, whose size each target reports itself (their headers differ): ranges and the body
   * check use that size, measured with one GET before the workload.
   */
  query?: string;
}

export interface ModeConfig {
  rounds: number;
  durationS: number;
  sweep: string[];
  slowReaders: number;
  slowSeconds: number;
  workloads: Workload[];
}

const range64k = (id: string, title: string, connections: number, file = "main", group: Workload["group"] = "throughput"): Workload => ({
  id,
  title,
  group,
  file,
  kind: "ranges",
  rangeLen: KiB_64,
  connections,
  metric: "rps",
  expectBody: () => KiB_64,
});

/** Spool's goal for the signed workload: at least this share of its public 64 KiB range rate. */
export const SIGNED_GOAL = 0.95;

/**
 * Spool's goal for its metrics: Spool ÷ Spool (METRICS=0) at least this on random 64 KiB ranges
 * and `bytes=0-1` probes (the stream hot path pays one counter increment per answer).
 */
export const METRICS_GOAL = 0.97;

/** The `range64k` ranges on another of Spool's copies of the main video, measured in `range64k`'s rounds. Spool only. */
const copyOfMain = (id: string, title: string, connections: number, short: string, pathKey: string): Workload => ({
  ...range64k(id, title, connections),
  short,
  pathKey,
  relativeTo: "range64k",
  only: ["spool"],
});

/**
 * The signed copy, `?token=<JWT>` on every request (one token, minted at start: Spool verifies it
 * once and caches the result).
 */
const signed = (title: string, connections: number) => copyOfMain("signed", title, connections, "Signed video, 64 KiB ranges", SIGNED_KEY);

/**
 * The signed workload's control: a public copy ingested beside the signed one (TWIN_KEY), so that
 * the signed ratio compares two copies with the same history in Spool's RAM tier.
 */
const twin = (title: string, connections: number) => copyOfMain("twin", title, connections, "Public twin, 64 KiB ranges", TWIN_KEY);

/** The clip the clip workloads ask for: 2 s from the middle of a GOP of the main video. */
export const CLIP_QUERY = "?start=10.5&end=12.5";

/**
 * Time clips (`?start=&end=`), Spool against nginx's mp4 module on the same file: whole-clip
 * GETs, and random 64 KiB ranges inside the clip (what a player seeking in a shared clip sends).
 * nginx parses the `moov` on every request; Spool caches the clip's header, and keeps the clip as
 * a file of its own after its first GET (CLIP_CACHE_BYTES, on by default): the GET that measures
 * each target's clip size before the workloads starts that build, so the timed whole-clip GETs
 * are sendfile of the kept file (as a popular clip is in production), not the first-time stream.
 */
const clipWorkloads = (connections: number, suffix = ""): Workload[] => [
  {
    id: "clip",
    title: `Whole 2 s clips (\`?start=10.5&end=12.5\`)${suffix}`,
    short: "Whole 2 s clips",
    group: "throughput",
    file: "main",
    kind: "fixed",
    query: CLIP_QUERY,
    connections: Math.min(connections, 16),
    headers: () => ({}),
    metric: "rps",
    expectBody: (size) => size,
    only: ["spool", "nginx"],
  },
  { ...range64k("clip64k", `Random 64 KiB ranges inside a 2 s clip${suffix}`, connections), short: "64 KiB ranges in a clip", query: CLIP_QUERY, only: ["spool", "nginx"] },
];

/**
 * The clip the film workloads ask for: 2 s from the middle of a GOP in the middle of the film
 * (`?start=3600.5&end=3602.5` on the two-hour film; key frames every 2 s, so the frame-exact clip
 * starts at the key frame 0.5 s earlier, as the main video's does).
 */
export function filmClipQuery(mode: Mode): string {
  const mid = filmSeconds(FILM_RECIPES[mode === "smoke" ? "smoke" : "full"]) / 2;
  return `?start=${mid + 0.5}&end=${mid + 2.5}`;
}

/** Media key of the film (bench/lib/media.ts ensureFilm): run.ts makes it only when a workload serves it. */
export const FILM = "film";

/**
 * The same two clip workloads on the film: a two-hour MP4 whose `moov` is about 7 MiB (a film's
 * sample tables) where the main video's is small. A 2 s clip of it is ~0.3 MB at ~1 Mbit/s, so a
 * whole clip is not bound by sending bytes, and nginx's per-request parse of the whole `moov`
 * (its mp4 module keeps nothing between requests) is what the rows compare with Spool's cached
 * header and kept clip file: the case clips exist for (a share link into a long film).
 */
const filmClipWorkloads = (mode: Mode, connections: number, suffix = ""): Workload[] => {
  const query = filmClipQuery(mode);
  const film = mode === "smoke" ? `${filmSeconds(FILM_RECIPES.smoke)} s film` : "2 h film";
  const shown = query.replace("?", "").replace("&", ", ");
  return [
    {
      id: "clip-film",
      title: `${film}: whole 2 s clips (\`${query}\`)${suffix}`,
      short: `${film}: whole 2 s clips`,
      group: "throughput",
      file: FILM,
      kind: "fixed",
      query,
      connections: Math.min(connections, 16),
      headers: () => ({}),
      metric: "rps",
      expectBody: (size) => size,
      only: ["spool", "nginx"],
    },
    {
      ...range64k("clip64k-film", `${film}: random 64 KiB ranges inside a 2 s clip (${shown})${suffix}`, connections, FILM),
      short: `${film}: 64 KiB ranges in a clip`,
      query,
      only: ["spool", "nginx"],
    },
  ];
};

/** The clip workloads on each file, for the goal lines (judged apart: the main video's are bandwidth-bound). */
export const CLIP_WORKLOADS = { main: ["clip", "clip64k"], film: ["clip-film", "clip64k-film"] } as const;

/** Id of the player-start workload: run.ts builds the library and the request lists only for it. */
export const PLAYERS = "players";

/**
 * The player-start mix (issue 15): per start a `bytes=0-1` probe, the first 256 KiB, then 2-4
 * seeks of 64-256 KiB, on one of the library's hundred videos picked by Zipf popularity (s = 1).
 * Spool, nginx and bare Bun (Express and FastAPI are far off on every small answer already).
 */
const players = (connections: number, suffix = ""): Workload => ({
  id: PLAYERS,
  title: `Player starts over ${LIBRARY_SIZE} videos, Zipf popularity${suffix}`,
  short: `Player starts, ${LIBRARY_SIZE} videos (Zipf)`,
  group: "library",
  file: "main",
  kind: "mix",
  connections,
  metric: "rps",
  // Checked against the request list instead (run.ts, mixByteBounds).
  expectBody: () => -1,
  only: ["spool", "nginx", "bun"],
});

/**
 * Spool's goal on the clip workloads (issue 13): at least this multiple of nginx's rate. The report
 * judges it apart on the film's rows and on the main video's (CLIP_WORKLOADS).
 */
export const CLIP_GOAL = 1.5;

export function buildWorkloads(mode: Mode, sweep: string[]): Workload[] {
  if (mode === "smoke") {
    return [
      range64k("range64k", "Random 64 KiB ranges (smoke)", 8),
      signed("Signed video: random 64 KiB ranges (smoke)", 8),
      twin("Public twin of the signed video: random 64 KiB ranges (smoke)", 8),
      ...clipWorkloads(8, " (smoke)"),
      ...filmClipWorkloads(mode, 8, " (smoke)"),
      players(8, " (smoke)"),
    ];
  }
  const list: Workload[] = [
    range64k("range64k", "Random 64 KiB ranges", 64),
    signed("Signed video: random 64 KiB ranges", 64),
    twin("Public twin of the signed video: random 64 KiB ranges", 64),
    { id: "range1m", title: "Random 1 MiB ranges", group: "throughput", file: "main", kind: "ranges", rangeLen: MiB_1, connections: 64, metric: "rps", expectBody: () => MiB_1 },
    {
      id: "probe",
      title: "`bytes=0-1` probes",
      group: "throughput",
      file: "main",
      kind: "fixed",
      connections: 64,
      headers: () => ({ Range: "bytes=0-1" }),
      metric: "rps",
      expectBody: () => 2,
    },
    {
      id: "revalidate",
      title: "If-None-Match revalidations (304)",
      short: "If-None-Match → 304",
      group: "throughput",
      file: "main",
      kind: "fixed",
      connections: 64,
      headers: (t, c) => (t.caps.etag && c.etag ? { "If-None-Match": c.etag } : null),
      metric: "rps",
      expectBody: () => 0,
    },
    {
      id: "whole",
      title: "Whole-file downloads",
      group: "throughput",
      file: "main",
      kind: "fixed",
      connections: 4,
      headers: () => ({}),
      metric: "gibps",
      expectBody: (size) => size,
    },
    ...clipWorkloads(64),
    ...filmClipWorkloads(mode, 64),
    range64k("c1", "64 KiB ranges, 1 connection", 1, "main", "concurrency"),
    range64k("c256", "64 KiB ranges, 256 connections", 256, "main", "concurrency"),
    ...sweep.map((key) => range64k(`sweep:${key}`, `64 KiB ranges, ${key.replace("sweep-", "").toUpperCase().replace(/([MG])$/, " $1iB")} file`, 64, key, "sweep")),
    // After the file workloads on the main video and the sweep, so their RAM tier starts as it
    // did before this workload existed (the library's hundred heads about fill the tier).
    players(64),
    {
      id: "api",
      title: "`GET /api/videos` (JSON)",
      short: "GET /api/videos (JSON API)",
      group: "api",
      file: "main",
      kind: "fixed",
      connections: 64,
      urlPath: "/api/videos",
      // Spool's list needs the API key (its row includes checking it); the bare peer has no auth.
      headers: (t) => ({ Accept: "application/json", ...(t.apiHeaders ?? {}) }),
      metric: "rps",
      expectBody: () => -1,
      generator: "autocannon",
      only: ["spool", "spool-pg", "bun"],
    },
  ];
  return list;
}

/** In quick mode the slow peers (Express, FastAPI) skip the concurrency and size sweeps. */
const QUICK_FAST_ONLY = new Set(["c1", "c256"]);

export function modeConfig(mode: Mode, sweep: string[]): ModeConfig {
  let workloads = buildWorkloads(mode, sweep);
  if (mode === "quick") {
    workloads = workloads.map((w) =>
      QUICK_FAST_ONLY.has(w.id) || w.group === "sweep" ? { ...w, only: w.only ?? (["spool", "nginx", "bun"] as TargetId[]) } : w,
    );
  }
  switch (mode) {
    case "smoke":
      return { rounds: 1, durationS: 1, sweep, slowReaders: 50, slowSeconds: 2, workloads };
    case "quick":
      return { rounds: 2, durationS: 1, sweep, slowReaders: 1000, slowSeconds: 5, workloads };
    case "full":
      return { rounds: 5, durationS: 2, sweep, slowReaders: 1000, slowSeconds: 15, workloads };
  }
}

/** Per-target outcome of one workload: every round, and the medians the report uses. */
export interface Cell {
  target: TargetId;
  rounds: LoadResult[];
  rps: number;
  gibps: number;
  p50us: number;
  p99us: number;
  errors: number;
  generator: string;
  /** Highest share of CPU used by unrelated processes during any round (0..1). */
  noise?: number;
  /** Why a cell is missing or suspicious. */
  note?: string;
  /** False when the generator saw errors or response sizes that do not match the request. */
  sane: boolean;
}
