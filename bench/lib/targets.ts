/**
 * Start and stop each server under test, on loopback, on an ephemeral port, pinned to the server
 * core when taskset is available. A target that cannot start is reported (failed or skipped), never
 * thrown: the harness keeps going with the others.
 */
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { openDatabase } from "../../src/db/client.ts";
import { newVideoId } from "../../src/library/ids.ts";
import { postgresAvailable, startPostgres } from "../../test/helpers/postgres.ts";
import type { FilmVideo, LibraryVideo, MediaFile } from "./media.ts";
import {
  BENCH_DIR,
  CACHE_DIR,
  LOOPBACK,
  REPO_ROOT,
  SERVER_CORE,
  drain,
  freePort,
  log,
  pinned,
  run,
  spoolEntry,
  spoolEntryLabel,
  spawnTracked,
  stopTracked,
  waitForHttp,
  which,
  type Tracked,
} from "./util.ts";

export type TargetId = "spool" | "spool-nometrics" | "spool-pg" | "nginx" | "bun" | "bun-memory" | "express" | "fastapi";

export const TARGET_ORDER: TargetId[] = ["spool", "spool-nometrics", "spool-pg", "nginx", "bun", "bun-memory", "express", "fastapi"];

export const TARGET_LABELS: Record<TargetId, string> = {
  spool: "Spool",
  "spool-nometrics": "Spool (METRICS=0)",
  "spool-pg": "Spool (PostgreSQL)",
  nginx: "nginx",
  bun: "bare Bun.serve",
  "bun-memory": "bare Bun (memory)",
  express: "Express 5",
  fastapi: "FastAPI",
};

/** Required targets make `--smoke` fail when they fail their checks; FastAPI, Spool (PostgreSQL) and bare Bun (memory) are optional. */
export const REQUIRED: Record<TargetId, boolean> = { spool: true, "spool-nometrics": true, "spool-pg": false, nginx: true, bun: true, "bun-memory": false, express: true, fastapi: false };

/**
 * The workloads Spool (METRICS=0) runs: the ones the metrics-cost goal is stated on. Each of its
 * runs sits right next to Spool's run of the same workload in every round (same seeded ranges).
 */
export const NOMETRICS_WORKLOADS = ["range64k", "probe"];
/**
 * What bare Bun (memory) is measured on: the small answers Spool's RAM tier gives (and 304s, for
 * the same process answering without a file), on the main video only.
 */
export const MEMORY_PEER_WORKLOADS = ["probe", "range64k", "revalidate"];
/** What Spool on PostgreSQL is measured on, paired with Spool on SQLite: the stream path and the list. */
export const POSTGRES_WORKLOADS = ["range64k", "probe", "revalidate", "api"];

export interface Caps {
  /** Answers If-None-Match with 304. */
  etag: boolean;
  lastModified: boolean;
  /** Has a JSON listing at /api/videos. */
  api: boolean;
}

/**
 * The API key the suite gives Spool (API_KEY; Spool wants at least 16 characters). Spool's
 * management routes, `GET /api/videos` among them, answer 401 without it.
 */
export const BENCH_API_KEY = "spool-bench-api-key-0123456789abcdef";

/** Path key (in `Running.paths` / `files`) of Spool's second copy of the main video, `playback: signed`. */
export const SIGNED_KEY = "main:signed";
/**
 * Path key of Spool's third copy of the main video, public: the signed copy's control. Ingested
 * right after the signed copy and touched by no other workload, so the two share their history
 * in Spool's RAM tier (which keeps resident blocks on ties, favouring whichever copy filled it
 * first) and `signed ÷ twin` is what the token costs.
 */
export const TWIN_KEY = "main:twin";

/** Spool's signed copy of the main video, and the playback token the suite minted for it. */
export interface SignedVideo {
  id: string;
  /** `/api/stream/<id>` without a token (must answer 403 token_missing). */
  tokenlessPath: string;
  /** `/api/stream/<id>?token=<JWT>`; undefined when minting failed (see `error`). */
  path?: string;
  token?: string;
  expiresAt?: string;
  error?: string;
}

export interface Running {
  id: TargetId;
  label: string;
  port: number;
  baseUrl: string;
  /** Server process id (for RSS sampling; children are included by the sampler). */
  pid: number;
  /** Media key -> URL path on this server. */
  paths: Record<string, string>;
  /** Media key -> the file this server actually reads (Spool: its stored copy), when known. */
  files?: Record<string, string>;
  caps: Caps;
  /** Headers the JSON API needs (Spool: `Authorization: Bearer <BENCH_API_KEY>`). */
  apiHeaders?: Record<string, string>;
  /** Spool only: the signed copy of the main video (its path is also `paths[SIGNED_KEY]`). */
  signed?: SignedVideo;
  /** Spool's two targets: whether this server was started with metrics on (METRICS=1) or off (METRICS=0). */
  metrics?: boolean;
  /** Only these workload ids ("slow" = the slow readers); default: every workload. */
  onlyWorkloads?: string[];
  /**
   * Measured inside this target's slot of every round, right next to its run of the same
   * workload (Spool (METRICS=0) next to Spool), so the per-round ratio compares back-to-back runs.
   */
  pairedWith?: TargetId;
  version: string;
  notes: string[];
  stop(): Promise<void>;
  logs(): string;
  /** False once the server process has exited (crashed mid-run). */
  alive(): boolean;
  /** "exited with code N" / "killed by SIGx" once dead. */
  exitInfo(): string;
}

export type StartOutcome =
  | { ok: true; running: Running }
  | { ok: false; id: TargetId; label: string; skipped: boolean; reason: string };

export interface NginxTuning {
  tcpNopush: "on" | "off";
  tcpNodelay: "on" | "off";
  sendfileMaxChunk: string;
}

/** The tuning the suite uses; bench/nginx/tune.ts measured the alternatives (see bench/README.md). */
export const NGINX_DEFAULT_TUNING: NginxTuning = { tcpNopush: "off", tcpNodelay: "on", sendfileMaxChunk: "2m" };

export interface StartContext {
  media: MediaFile[];
  /**
   * The player-start mix's hundred videos, when that workload runs: Spool, nginx and bare Bun
   * serve them too (their paths under the same keys). Spool seeds them (seedLibrary).
   */
  library?: LibraryVideo[];
  /**
   * The two-hour film of the film clip workloads, when they run: Spool (a cloned row, see
   * startSpool) and nginx serve it under the key `film`.
   */
  film?: FilmVideo;
  /** Temp dir for this run (world-traversable so nginx's worker user can read it). */
  tmp: string;
  /** `<tmp>/www`, holding `media/<key>.mp4` symlinks to the cached files. */
  webroot: string;
  nginxTuning: NginxTuning;
  /** Set by the harness after Spool starts: Spool's SQLite file, which the bare Bun peer lists from. */
  apiDbPath?: string;
  /** Extra environment for Spool (e.g. WORKERS). */
  spoolEnv?: Record<string, string>;
  /** Set by the harness once Spool runs: Spool (METRICS=0) serves the same DATA_DIR and videos. */
  spool?: Running;
}

/** Spool's DATA_DIR inside a run's temp dir (its SQLite file is `spool.db` there). */
export function spoolDataDir(tmp: string): string {
  return resolve(tmp, "spool-data");
}

export function prepareWebroot(tmp: string, media: MediaFile[]): string {
  const webroot = resolve(tmp, "www");
  const dir = resolve(webroot, "media");
  mkdirSync(dir, { recursive: true });
  for (const m of media) {
    const link = resolve(dir, `${m.key}.mp4`);
    rmSync(link, { force: true });
    symlinkSync(m.path, link);
  }
  for (const d of [tmp, webroot, dir]) chmodSync(d, 0o755);
  return webroot;
}

const BUN = process.execPath;

interface ServerProc {
  tracked: Tracked;
  logs: () => string;
}

function startServer(name: string, cmd: string[], env: Record<string, string>): ServerProc {
  const tracked = spawnTracked(name, pinned(SERVER_CORE, cmd), { env, stdout: "pipe", stderr: "pipe" });
  const out = drain(tracked.proc.stdout);
  const err = drain(tracked.proc.stderr);
  return { tracked, logs: () => `${out()}\n${err()}`.trim() };
}

const alive = (t: Tracked) => () => t.proc.exitCode === null && t.proc.signalCode === null;
const exitInfo = (t: Tracked) => () =>
  t.proc.signalCode !== null ? `killed by ${t.proc.signalCode}` : t.proc.exitCode !== null ? `exited with code ${t.proc.exitCode}` : "running";

async function waitReady(sp: ServerProc, url: string, timeoutMs: number): Promise<string | null> {
  const ok = await waitForHttp(url, timeoutMs, alive(sp.tracked));
  if (ok) return null;
  const why = alive(sp.tracked)() ? `no 200 from ${url} within ${timeoutMs} ms` : `exited with code ${sp.tracked.proc.exitCode}`;
  await stopTracked(sp.tracked);
  return `${why}\n${sp.logs().slice(-1500)}`;
}

function failed(id: TargetId, reason: string, skipped = false): StartOutcome {
  return { ok: false, id, label: TARGET_LABELS[id], skipped, reason };
}

// ---------------------------------------------------------------------------------------------
// Spool
// ---------------------------------------------------------------------------------------------

interface IngestedVideo {
  id: string;
  size?: number;
  streamUrl?: string;
}

function parseIngestOutput(stdout: string): IngestedVideo | null {
  const text = stdout.trim();
  const candidates = [text, ...text.split("\n").reverse()];
  const start = text.indexOf("{");
  if (start >= 0) candidates.push(text.slice(start));
  for (const c of candidates) {
    try {
      const v = JSON.parse(c) as unknown;
      if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        const inner = (o.video && typeof o.video === "object" ? o.video : o) as Record<string, unknown>;
        if (typeof inner.id === "string" || typeof inner.id === "number") {
          return {
            id: String(inner.id),
            size: typeof inner.size === "number" ? inner.size : undefined,
            streamUrl: typeof inner.streamUrl === "string" ? inner.streamUrl : undefined,
          };
        }
      }
    } catch {}
  }
  return null;
}

/**
 * Spool keeps each video as `<DATA_DIR>/videos/<id>/source.<ext>`. When that file is found (same
 * size), the other targets are pointed at it, so every server reads the very same inode and page
 * cache (the 8 GiB sweep source is sparse; Spool's copy is not). Undefined when the layout differs.
 */
function findStoredCopy(dataDir: string, id: string, size: number): string | undefined {
  const dir = resolve(dataDir, "videos", id);
  try {
    for (const name of readdirSync(dir)) {
      if (!name.startsWith("source")) continue;
      const p = resolve(dir, name);
      if (statSync(p).size === size) return p;
    }
  } catch {}
  return undefined;
}

/** The longest lifetime Spool accepts (7 days): the token outlives any run. */
const TOKEN_TTL_S = 604_800;

/** Mints a playback token for the signed copy (POST /api/videos/:id/tokens, with the key). */
async function mintToken(baseUrl: string, id: string, apiHeaders: Record<string, string>): Promise<SignedVideo> {
  const tokenlessPath = `/api/stream/${id}`;
  try {
    const res = await fetch(`${baseUrl}/api/videos/${id}/tokens`, {
      method: "POST",
      headers: { ...apiHeaders, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ expiresIn: TOKEN_TTL_S }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (res.status !== 201) return { id, tokenlessPath, error: `POST /api/videos/${id}/tokens answered ${res.status}: ${text.slice(0, 300)}` };
    const body = JSON.parse(text) as { token?: unknown; expiresAt?: unknown };
    if (typeof body.token !== "string" || !body.token) return { id, tokenlessPath, error: `no token in ${text.slice(0, 300)}` };
    return {
      id,
      tokenlessPath,
      token: body.token,
      expiresAt: typeof body.expiresAt === "string" ? body.expiresAt : undefined,
      path: `${tokenlessPath}?token=${encodeURIComponent(body.token)}`,
    };
  } catch (e) {
    return { id, tokenlessPath, error: `minting a token failed: ${String(e)}` };
  }
}

/** Spool's environment in the suite (both Spool targets; the METRICS=0 one overrides METRICS). */
export function spoolEnv(ctx: StartContext): Record<string, string> {
  return {
    NODE_ENV: "production",
    HOST: LOOPBACK,
    DATA_DIR: spoolDataDir(ctx.tmp),
    SEED_DEMO: "0",
    WORKERS: "1",
    // The HLS transcode worker would run ffmpeg on the server core during timing; the benchmark
    // measures streaming (in production it can also run apart: `bun run worker`).
    TRANSCODE_IN_SERVER: "0",
    // Management routes (GET /api/videos among them) need this key; the `api` workload sends it.
    API_KEY: BENCH_API_KEY,
    // Explicit, so a METRICS=0 in the caller's environment cannot turn the normal target's metrics off.
    METRICS: "1",
    ...(ctx.spoolEnv ?? {}),
  };
}

function spoolVersion(): string {
  let version = "unknown";
  try {
    const pkg = JSON.parse(readFileSync(resolve(REPO_ROOT, "package.json"), "utf8")) as { version?: string };
    version = `spool ${pkg.version ?? "?"} on Bun ${Bun.version}`;
  } catch {}
  const git = Bun.spawnSync(["git", "describe", "--always", "--dirty"], { cwd: REPO_ROOT, stderr: "ignore" });
  if (git.exitCode === 0) version += ` (${git.stdout.toString().trim()})`;
  return version;
}

/** Starts Spool (spoolEntry: the bundle, as `npm start` runs it) with `env` on a free port and waits for /health. */
async function launchSpool(id: "spool" | "spool-nometrics" | "spool-pg", env: Record<string, string>): Promise<{ sp: ServerProc; port: number; baseUrl: string } | { error: string }> {
  const port = await freePort();
  const sp = startServer(id, [BUN, spoolEntry()], { ...env, PORT: String(port) });
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const err = await waitReady(sp, `${baseUrl}/health`, 30_000);
  return err ? { error: err } : { sp, port, baseUrl };
}

const spoolNote = (env: Record<string, string>) =>
  `NODE_ENV=production WORKERS=${env.WORKERS} TRANSCODE_IN_SERVER=${env.TRANSCODE_IN_SERVER}${env.METRICS === "0" ? " METRICS=0" : ""} API_KEY=<bench key> ${spoolEntryLabel()}`;

async function startSpool(ctx: StartContext): Promise<StartOutcome> {
  let entry: string;
  try {
    entry = spoolEntry();
  } catch (error) {
    return failed("spool", error instanceof Error ? error.message : String(error));
  }
  const ingestCli = resolve(REPO_ROOT, "src/cli/ingest.ts");
  if (!existsSync(entry)) return failed("spool", `${entry} does not exist`);
  if (!existsSync(ingestCli)) return failed("spool", "src/cli/ingest.ts does not exist");
  const dataDir = spoolDataDir(ctx.tmp);
  mkdirSync(dataDir, { recursive: true });
  const env = spoolEnv(ctx);
  const paths: Record<string, string> = {};
  const files: Record<string, string> = {};
  // Every media file public (whatever DEFAULT_PLAYBACK says), plus the main video a second time
  // as a separate, signed video for the `signed` workload, and a third time, public, as its control.
  const ingests = [
    ...ctx.media.map((m) => ({ key: m.key, media: m, playback: "public" as const })),
    ...ctx.media.filter((m) => m.key === "main").map((m) => ({ key: SIGNED_KEY, media: m, playback: "signed" as const })),
    ...ctx.media.filter((m) => m.key === "main").map((m) => ({ key: TWIN_KEY, media: m, playback: "public" as const })),
  ];
  let signedId: string | undefined;
  let mainId: string | undefined;
  for (const { key, media: m, playback } of ingests) {
    const t0 = Date.now();
    const r = await run([BUN, ingestCli, m.path, "--title", `bench ${key}`, "--playback", playback], {
      env,
      timeoutMs: 10 * 60_000,
      name: `ingest ${key}`,
    });
    if (r.code !== 0 || r.timedOut) {
      return failed("spool", `ingest of ${key} failed (code ${r.code}${r.timedOut ? ", timed out" : ""}): ${(r.stderr || r.stdout).slice(-1500)}`);
    }
    const v = parseIngestOutput(r.stdout);
    if (!v) return failed("spool", `ingest of ${key} printed no video JSON: ${r.stdout.slice(-500)}`);
    const streamPath = `/api/stream/${v.id}`;
    if (key === "main") mainId = v.id;
    if (key === SIGNED_KEY) signedId = v.id;
    else paths[key] = v.streamUrl ?? streamPath;
    const stored = findStoredCopy(dataDir, v.id, m.size);
    if (stored) files[key] = stored;
    log(`spool: ingested ${key} (${playback}) as ${v.id} in ${Date.now() - t0} ms`);
  }
  if (ctx.library?.length) {
    const err = await seedLibrary(ctx.library, env, dataDir, paths, files);
    if (err) return failed("spool", err);
  }
  // The film (clip workloads on a two-hour MP4): a row cloned from the main video's (same
  // container and codecs), with the film's own size, SHA-256, duration and dimensions, and the
  // cached file hard-linked where an ingest stores it. Ingesting ~1 GB would copy and hash it
  // again for nothing the stream route reads.
  if (ctx.film) {
    const t0 = Date.now();
    const film = ctx.film;
    if (!mainId) return failed("spool", "the film's row is cloned from the main video's, which was not ingested");
    const err = await cloneRows(dataDir, mainId, [film], paths, files, () => ({ width: film.width, height: film.height, title: `bench film (${film.label})` }));
    if (err) return failed("spool", `film: ${err}`);
    log(`spool: film ${film.key} as a row cloned from the main video's, its file hard-linked, in ${Date.now() - t0} ms`);
  }
  // Flush the copies to disk now, not as writeback competing with the first measurements.
  if (which("sync")) await run([which("sync") as string], { timeoutMs: 300_000, name: "sync" });
  const launched = await launchSpool("spool", env);
  if ("error" in launched) return failed("spool", `did not become ready: ${launched.error}`);
  const { sp, port, baseUrl } = launched;
  const apiHeaders = { Authorization: `Bearer ${env.API_KEY}` };
  let signed: SignedVideo | undefined;
  if (signedId) {
    signed = await mintToken(baseUrl, signedId, apiHeaders);
    if (signed.path) paths[SIGNED_KEY] = signed.path;
    log(signed.path ? `spool: minted a playback token for ${signedId} (expires ${signed.expiresAt})` : `spool: no playback token for ${signedId}: ${signed.error}`);
  }
  return {
    ok: true,
    running: {
      id: "spool",
      label: TARGET_LABELS.spool,
      port,
      baseUrl,
      pid: sp.tracked.proc.pid,
      paths,
      files,
      caps: { etag: true, lastModified: true, api: true },
      apiHeaders,
      signed,
      metrics: true,
      version: spoolVersion(),
      notes: [spoolNote(env)],
      stop: () => stopTracked(sp.tracked),
      logs: sp.logs,
      alive: alive(sp.tracked),
      exitInfo: exitInfo(sp.tracked),
    },
  };
}

/**
 * The player-start library in Spool's DATA_DIR: its first video ingested with the CLI like every
 * other bench file (probe, processing, poster, SHA-256), the other ones as rows cloned from that
 * row (their own id, title, size, SHA-256, duration; HLS none) and their file hard-linked (copied
 * if that fails) to `videos/<id>/source.mp4`, exactly where an ingest stores it. A hundred CLI
 * ingests would take about two minutes; the stream route reads only the row and the file.
 * Fills `paths` and `files` under the library's keys. Returns an error message, or null.
 */
async function seedLibrary(
  library: LibraryVideo[],
  env: Record<string, string>,
  dataDir: string,
  paths: Record<string, string>,
  files: Record<string, string>,
): Promise<string | null> {
  const t0 = Date.now();
  const [first, ...rest] = library;
  if (!first) return null;
  const r = await run([BUN, resolve(REPO_ROOT, "src/cli/ingest.ts"), first.path, "--title", `bench ${first.key}`, "--playback", "public"], {
    env,
    timeoutMs: 5 * 60_000,
    name: `ingest ${first.key}`,
  });
  const v = r.code === 0 && !r.timedOut ? parseIngestOutput(r.stdout) : null;
  if (!v) return `ingest of ${first.key} failed (code ${r.code}${r.timedOut ? ", timed out" : ""}): ${(r.stderr || r.stdout).slice(-1500)}`;
  paths[first.key] = v.streamUrl ?? `/api/stream/${v.id}`;
  const stored = findStoredCopy(dataDir, v.id, first.size);
  if (stored) files[first.key] = stored;
  const err = await cloneRows(dataDir, v.id, rest, paths, files);
  if (err) return err;
  log(`spool: library of ${library.length} videos (${first.key} ingested, ${rest.length} rows cloned from it) in ${Date.now() - t0} ms`);
  return null;
}

/**
 * Rows cloned from Spool's ready row `templateId` (the same container, codecs, playback), one per
 * video, each with its own id, title, size, SHA-256 and duration (and `extra` fields, e.g. the
 * film's width and height; HLS none), its file hard-linked (copied if that fails) to
 * `videos/<id>/source.mp4` where an ingest stores it. The stream route reads only the row and the
 * file. Fills `paths` and `files` under the videos' keys. Returns an error message, or null.
 */
async function cloneRows(
  dataDir: string,
  templateId: string,
  list: LibraryVideo[],
  paths: Record<string, string>,
  files: Record<string, string>,
  extra: (m: LibraryVideo) => Record<string, unknown> = () => ({}),
): Promise<string | null> {
  const handle = await openDatabase(`file:${join(dataDir, "spool.db")}`);
  try {
    const { videos } = handle.tables;
    const template = (await handle.db.select().from(videos)).find((row) => row.id === templateId);
    if (!template || template.status !== "ready") return `the ingested video ${templateId} is not a ready row`;
    const now = Date.now();
    const rows = list.map((m, i) => {
      const id = newVideoId();
      const dir = resolve(dataDir, "videos", id);
      mkdirSync(dir, { recursive: true });
      const target = resolve(dir, "source.mp4");
      try {
        linkSync(m.path, target);
      } catch {
        copyFileSync(m.path, target);
      }
      paths[m.key] = `/api/stream/${id}`;
      files[m.key] = target;
      return {
        ...template,
        id,
        title: `bench ${m.key}`,
        originalFilename: `${m.key}.mp4`,
        storagePath: `videos/${id}/source.mp4`,
        size: m.size,
        sha256: m.sha256,
        sourceSha256: m.sha256,
        sourceSize: m.size,
        duration: m.duration,
        bitrate: Math.round((m.size * 8) / m.duration),
        hlsStatus: "none" as const,
        hlsProgress: 0,
        hlsError: null,
        createdAt: new Date(now + i),
        updatedAt: new Date(now + i),
        ...extra(m),
      };
    });
    if (rows.length) await handle.db.insert(videos).values(rows);
  } finally {
    await handle.close();
  }
  return null;
}

/**
 * A second Spool paired with the first (`ctx.spool`): the very same DATA_DIR and stored files
 * (inodes, page cache), its own port and environment, serving Spool's public videos (the signed
 * copy is the `signed` workload's alone) on `workloads` only. It ingests nothing and runs no
 * worker (TRANSCODE_IN_SERVER=0).
 */
async function startPairedSpool(
  id: "spool-nometrics" | "spool-pg",
  ctx: StartContext,
  options: { env: Record<string, string>; workloads: string[]; note: string; cleanup?: () => Promise<void> },
): Promise<StartOutcome> {
  const spool = ctx.spool;
  if (!spool || !spool.alive()) return failed(id, `needs the Spool target (its DATA_DIR and videos): start it too (--targets=spool,${id},…)`);
  const launched = await launchSpool(id, options.env);
  if ("error" in launched) {
    await options.cleanup?.();
    return failed(id, `did not become ready: ${launched.error}`);
  }
  const { sp, port, baseUrl } = launched;
  const own = ([k]: [string, string]) => k !== SIGNED_KEY && k !== TWIN_KEY;
  const paths = Object.fromEntries(Object.entries(spool.paths).filter(own));
  const files = Object.fromEntries(Object.entries(spool.files ?? {}).filter(own));
  return {
    ok: true,
    running: {
      id,
      label: TARGET_LABELS[id],
      port,
      baseUrl,
      pid: sp.tracked.proc.pid,
      paths,
      files,
      caps: { etag: true, lastModified: true, api: true },
      apiHeaders: spool.apiHeaders,
      metrics: options.env.METRICS !== "0",
      onlyWorkloads: options.workloads,
      pairedWith: "spool",
      version: spoolVersion(),
      notes: [`${spoolNote(options.env)}; ${options.note}`],
      stop: async () => {
        await stopTracked(sp.tracked);
        await options.cleanup?.();
      },
      logs: sp.logs,
      alive: alive(sp.tracked),
      exitInfo: exitInfo(sp.tracked),
    },
  };
}

/** The same Spool with METRICS=0 (no /metrics, no counting on the stream route), reading Spool's SQLite file (WAL). */
function startSpoolNoMetrics(ctx: StartContext): Promise<StartOutcome> {
  return startPairedSpool("spool-nometrics", ctx, { env: { ...spoolEnv(ctx), METRICS: "0" }, workloads: NOMETRICS_WORKLOADS, note: "Spool's DATA_DIR, on its own port" });
}

// ---------------------------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------------------------

export function nginxBinary(): string | null {
  return which("nginx") ?? which("/usr/sbin/nginx");
}

export function renderNginxConf(vars: Record<string, string>): string {
  const tpl = readFileSync(resolve(BENCH_DIR, "nginx/nginx.conf.template"), "utf8");
  return tpl.replace(/\{\{([A-Z_]+)\}\}/g, (_m, k: string) => {
    const v = vars[k];
    if (v === undefined) throw new Error(`nginx template: no value for {{${k}}}`);
    return v;
  });
}

export async function startNginx(ctx: StartContext, tuning: NginxTuning = ctx.nginxTuning, name = "nginx"): Promise<StartOutcome> {
  const bin = nginxBinary();
  if (!bin) return failed("nginx", "nginx not installed (apt-get install nginx-core)", true);
  const v = Bun.spawnSync([bin, "-V"], { stderr: "pipe" });
  const info = v.stderr.toString();
  if (!info.includes("http_mp4_module")) return failed("nginx", "this nginx has no mp4 module (use Debian's nginx-core)", true);
  const version = info.split("\n")[0]?.replace(/^nginx version:\s*/, "") ?? "nginx";
  const prefix = resolve(ctx.tmp, name);
  mkdirSync(resolve(prefix, "tmp"), { recursive: true });
  chmodSync(prefix, 0o755);
  const port = await freePort();
  const conf = renderNginxConf({
    PREFIX: prefix,
    PORT: String(port),
    WEBROOT: ctx.webroot,
    TCP_NOPUSH: tuning.tcpNopush,
    TCP_NODELAY: tuning.tcpNodelay,
    SENDFILE_MAX_CHUNK: tuning.sendfileMaxChunk,
  });
  const confPath = resolve(prefix, "nginx.conf");
  writeFileSync(confPath, conf);
  const sp = startServer(name, [bin, "-p", prefix, "-e", resolve(prefix, "error.log"), "-c", confPath, "-g", "daemon off;"], {});
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const err = await waitReady(sp, `${baseUrl}/health`, 15_000);
  if (err) {
    let elog = "";
    try {
      elog = readFileSync(resolve(prefix, "error.log"), "utf8").slice(-1000);
    } catch {}
    return failed("nginx", `did not become ready: ${err}\n${elog}`);
  }
  const paths: Record<string, string> = {};
  for (const m of [...ctx.media, ...(ctx.library ?? []), ...(ctx.film ? [ctx.film] : [])]) paths[m.key] = `/media/${m.key}.mp4`;
  return {
    ok: true,
    running: {
      id: "nginx",
      label: TARGET_LABELS.nginx,
      port,
      baseUrl,
      pid: sp.tracked.proc.pid,
      paths,
      caps: { etag: true, lastModified: true, api: false },
      version,
      notes: [`worker_processes 1, sendfile on, tcp_nopush ${tuning.tcpNopush}, tcp_nodelay ${tuning.tcpNodelay}, sendfile_max_chunk ${tuning.sendfileMaxChunk}, open_file_cache, mp4 with mp4_start_key_frame on`],
      stop: () => stopTracked(sp.tracked),
      logs: sp.logs,
      alive: alive(sp.tracked),
      exitInfo: exitInfo(sp.tracked),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// bare Bun.serve
// ---------------------------------------------------------------------------------------------

/**
 * Bare Bun.serve over the files (`bun`), or over copies of them held in memory (`bun-memory`:
 * the main video only, on MEMORY_PEER_WORKLOADS; see peers/bare-bun.ts).
 */
async function startBareBun(ctx: StartContext, id: "bun" | "bun-memory" = "bun"): Promise<StartOutcome> {
  const memory = id === "bun-memory";
  const port = await freePort();
  const media = memory ? ctx.media.filter((m) => m.key === "main") : [...ctx.media, ...(ctx.library ?? [])];
  const files: Record<string, string> = {};
  for (const m of media) files[m.key] = m.path;
  const env: Record<string, string> = { PORT: String(port), HOST: LOOPBACK, BENCH_FILES: JSON.stringify(files), NODE_ENV: "production" };
  if (memory) env.BENCH_MEMORY = "1";
  else if (ctx.apiDbPath && existsSync(ctx.apiDbPath)) env.BENCH_API_DB = ctx.apiDbPath;
  const sp = startServer(id, [BUN, resolve(BENCH_DIR, "peers/bare-bun.ts")], env);
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const err = await waitReady(sp, `${baseUrl}/health`, 15_000);
  if (err) return failed(id, `did not become ready: ${err}`);
  const paths: Record<string, string> = {};
  for (const m of media) paths[m.key] = `/files/${m.key}`;
  return {
    ok: true,
    running: {
      id,
      label: TARGET_LABELS[id],
      port,
      baseUrl,
      pid: sp.tracked.proc.pid,
      paths,
      caps: { etag: true, lastModified: false, api: env.BENCH_API_DB !== undefined },
      ...(memory ? { onlyWorkloads: MEMORY_PEER_WORKLOADS } : {}),
      version: `Bun ${Bun.version}`,
      notes: [
        memory
          ? "the main video read into one Blob at start; a single range answered with a slice of it + ETag, Accept-Ranges, Content-Range; the same 304 check"
          : "new Response(Bun.file(path)) + a precomputed-ETag 304 check; GET /api/videos from Spool's SQLite file via bun:sqlite + Response.json",
      ],
      stop: () => stopTracked(sp.tracked),
      logs: sp.logs,
      alive: alive(sp.tracked),
      exitInfo: exitInfo(sp.tracked),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Express 5 (on Node when available)
// ---------------------------------------------------------------------------------------------

/** Bundle a TS entry for Node into bench/.cache/peers (packages stay external, resolved from node_modules). */
export async function bundleForNode(entry: string, outName: string): Promise<string> {
  const outdir = resolve(CACHE_DIR, "peers");
  mkdirSync(outdir, { recursive: true });
  const res = await Bun.build({ entrypoints: [entry], outdir, target: "node", packages: "external", naming: outName, format: "esm" });
  if (!res.success) throw new Error(`Bun.build ${entry}: ${res.logs.map((l) => String(l)).join("\n")}`);
  return resolve(outdir, outName);
}

async function startExpress(ctx: StartContext): Promise<StartOutcome> {
  if (!existsSync(resolve(REPO_ROOT, "node_modules/express/package.json"))) return failed("express", "express is not installed (npm install)", true);
  const node = which("node");
  let cmd: string[];
  let runtime: string;
  try {
    if (node) {
      cmd = [node, await bundleForNode(resolve(BENCH_DIR, "peers/express.ts"), "express.js")];
      runtime = `Node ${Bun.spawnSync([node, "--version"]).stdout.toString().trim()}`;
    } else {
      cmd = [BUN, resolve(BENCH_DIR, "peers/express.ts")];
      runtime = `Bun ${Bun.version} (node not found)`;
    }
  } catch (e) {
    return failed("express", `could not bundle the Express peer: ${String(e)}`);
  }
  const port = await freePort();
  const sp = startServer("express", cmd, { PORT: String(port), HOST: LOOPBACK, BENCH_ROOT: resolve(ctx.webroot, "media"), NODE_ENV: "production" });
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const err = await waitReady(sp, `${baseUrl}/health`, 15_000);
  if (err) return failed("express", `did not become ready: ${err}`);
  let ev = "?";
  try {
    ev = (JSON.parse(readFileSync(resolve(REPO_ROOT, "node_modules/express/package.json"), "utf8")) as { version: string }).version;
  } catch {}
  const paths: Record<string, string> = {};
  for (const m of ctx.media) paths[m.key] = `/media/${m.key}.mp4`;
  return {
    ok: true,
    running: {
      id: "express",
      label: TARGET_LABELS.express,
      port,
      baseUrl,
      pid: sp.tracked.proc.pid,
      paths,
      caps: { etag: true, lastModified: true, api: false },
      version: `express ${ev} on ${runtime}`,
      notes: ["express.static (send), defaults"],
      stop: () => stopTracked(sp.tracked),
      logs: sp.logs,
      alive: alive(sp.tracked),
      exitInfo: exitInfo(sp.tracked),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// FastAPI StreamingResponse design (optional)
// ---------------------------------------------------------------------------------------------

export function findFastapiPython(): { python: string; version: string } | null {
  // BENCH_PYTHON, when set, is the only interpreter tried (BENCH_PYTHON=none skips FastAPI).
  const env = process.env.BENCH_PYTHON;
  const candidates = env ? [env] : ["/usr/bin/python3", which("python3") ?? ""].filter((x) => !!x);
  for (const py of [...new Set(candidates)]) {
    if (!existsSync(py)) continue;
    const r = Bun.spawnSync(
      [py, "-c", "import sys, fastapi, uvicorn; print(f'FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__}, Python {sys.version.split()[0]}')"],
      { stdout: "pipe", stderr: "ignore" },
    );
    if (r.exitCode === 0) return { python: py, version: r.stdout.toString().trim() };
  }
  return null;
}

async function startFastapi(ctx: StartContext): Promise<StartOutcome> {
  const found = findFastapiPython();
  if (!found) return failed("fastapi", "python3-fastapi / python3-uvicorn not installed (optional: apt-get install python3-fastapi python3-uvicorn)", true);
  const port = await freePort();
  const files: Record<string, string> = {};
  for (const m of ctx.media) files[m.key] = m.path;
  const sp = startServer("fastapi", [found.python, resolve(BENCH_DIR, "peers/fastapi_seed.py")], {
    PORT: String(port),
    HOST: LOOPBACK,
    BENCH_FILES: JSON.stringify(files),
    PYTHONDONTWRITEBYTECODE: "1",
  });
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const err = await waitReady(sp, `${baseUrl}/health`, 20_000);
  if (err) return failed("fastapi", `did not become ready: ${err}`);
  const paths: Record<string, string> = {};
  for (const m of ctx.media) paths[m.key] = `/video/${m.key}`;
  return {
    ok: true,
    running: {
      id: "fastapi",
      label: TARGET_LABELS.fastapi,
      port,
      baseUrl,
      pid: sp.tracked.proc.pid,
      paths,
      caps: { etag: false, lastModified: false, api: false },
      version: found.version,
      notes: ["StreamingResponse over a generator of 1 MiB chunks, regex Range parsing, no validators"],
      stop: () => stopTracked(sp.tracked),
      logs: sp.logs,
      alive: alive(sp.tracked),
      exitInfo: exitInfo(sp.tracked),
    },
  };
}

/**
 * The same Spool on PostgreSQL: a throwaway cluster (Debian's postgresql package; or the server
 * named by SPOOL_TEST_POSTGRES_URL) holding a copy of Spool's rows (the same stored files).
 * Paired with Spool on SQLite, so the ratio shows what the dialect costs on the stream path
 * (nothing is expected: the catalog caches) and on the library list (its page cache's freshness
 * check differs per dialect).
 */
async function startSpoolPostgres(ctx: StartContext): Promise<StartOutcome> {
  if (!ctx.spool?.alive()) return failed("spool-pg", "needs the Spool target (its DATA_DIR and videos): start it too (--targets=spool,spool-pg,…)");
  if (!postgresAvailable()) return failed("spool-pg", "PostgreSQL is not installed (apt-get install postgresql) and SPOOL_TEST_POSTGRES_URL is not set", true);
  const postgres = await startPostgres();
  const databaseUrl = await postgres.createDatabase();
  const from = await openDatabase(`file:${join(spoolDataDir(ctx.tmp), "spool.db")}`);
  const to = await openDatabase(databaseUrl);
  try {
    const rows = await from.db.select().from(from.tables.videos);
    if (rows.length) await to.db.insert(to.tables.videos).values(rows);
  } finally {
    await from.close();
    await to.close();
  }
  return startPairedSpool("spool-pg", ctx, {
    env: { ...spoolEnv(ctx), DATABASE_URL: databaseUrl },
    workloads: POSTGRES_WORKLOADS,
    note: "DATABASE_URL=postgres://… (a copy of Spool's rows), Spool's DATA_DIR, on its own port",
    cleanup: () => postgres.stop(),
  });
}

export async function startTarget(id: TargetId, ctx: StartContext): Promise<StartOutcome> {
  try {
    switch (id) {
      case "spool":
        return await startSpool(ctx);
      case "spool-nometrics":
        return await startSpoolNoMetrics(ctx);
      case "spool-pg":
        return await startSpoolPostgres(ctx);
      case "nginx":
        return await startNginx(ctx);
      case "bun":
        return await startBareBun(ctx);
      case "bun-memory":
        return await startBareBun(ctx, "bun-memory");
      case "express":
        return await startExpress(ctx);
      case "fastapi":
        return await startFastapi(ctx);
    }
  } catch (e) {
    return failed(id, `start threw: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  }
}
