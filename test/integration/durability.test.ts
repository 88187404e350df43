/**
 * What a power loss cannot take back: a real Spool process run under strace(1), whose system
 * calls show that an upload's bytes and the directory entries that name them reach the disk
 * (fsync) before the client hears 201, the stored file, a remux and the poster before the video
 * is ready, every file of the HLS ladder before it is published, and that every SQLite commit
 * is synced (synchronous=FULL). src/lib/durable.ts says why. A crash of the process alone needs
 * none of this; nothing short of cutting the power shows it otherwise.
 *
 * Needs strace and permission to trace (CI installs strace and runs as root); skipped otherwise,
 * saying why.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filesUnder, uploadMultipart, type VideoJson } from "../helpers/library.ts";
import { hasFfmpeg, makeVideo } from "../helpers/media.ts";
import { freePort, spawnCaptured, ROOT, type SpoolProcess } from "../helpers/process.ts";
import { AUTH, TEST_API_KEY } from "../helpers/spool.ts";

const strace = Bun.which("strace");
const traceable = !!strace && Bun.spawnSync([strace, "-qq", "-e", "trace=none", "true"]).exitCode === 0;
if (!traceable) console.warn(`durability.test.ts: skipped (${strace ? "strace may not trace here" : "strace is not installed"})`);
const runs = traceable && hasFfmpeg;

let scratch: string;
let dataDir: string;
let traceLog: string;
let server: SpoolProcess | undefined;
let base: string;

beforeAll(async () => {
  if (!runs) return;
  scratch = await mkdtemp(join(tmpdir(), "spool-durable-"));
  dataDir = join(scratch, "data");
  traceLog = join(scratch, "trace.log");
  const port = freePort();
  base = `http://127.0.0.1:${port}`;
  // -y: descriptors with their paths; -ttt: wall-clock times, to compare with the client's.
  const traced = [strace!, "-f", "-qq", "-y", "-ttt", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", "-o", traceLog, "--"];
  server = spawnCaptured([...traced, process.execPath, join(ROOT, "src/index.ts")], {
    PORT: String(port),
    HOST: "127.0.0.1",
    WORKERS: "1",
    DATA_DIR: dataDir,
    // Whatever the calling shell says: this test reads the SQLite file's own calls.
    DATABASE_URL: `file:${join(dataDir, "spool.db")}`,
    STORAGE: "local",
    API_KEY: TEST_API_KEY,
    SEED_DEMO: "0",
    HLS_MAX_HEIGHT: "240",
  });
  await server.waitFor(["Spool listening"], 60_000);
});

afterAll(async () => {
  if (server) {
    // strace exits once the server it runs does (a signal to strace would only detach it).
    const spool = Number(readFileSync(`/proc/${server.proc.pid}/task/${server.proc.pid}/children`, "utf8").trim().split(" ")[0]);
    if (spool > 0) process.kill(spool, "SIGTERM");
    await server.proc.exited;
  }
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

interface Call {
  at: number;
  name: string;
  /** fsync: the path of the descriptor; rename: [from, to]. */
  paths: string[];
}

/** The traced calls of the server that succeeded, in order of time. */
function calls(): Promise<Call[]> {
  return callsIn(traceLog);
}

/** The calls that succeeded in one strace log, in order of time. */
async function callsIn(log: string): Promise<Call[]> {
  const out: Call[] = [];
  for (const line of (await readFile(log, "utf8")).split("\n")) {
    const m = line.match(/^\d+\s+(\d+\.\d+) (\w+)\((.*)\)\s+= 0$/);
    if (!m) continue;
    const [, at, name, args] = m;
    const paths = [...args!.matchAll(/(?:<([^>]*)>|"([^"]*)")/g)].map((p) => p[1] ?? p[2]!).filter((p) => p.startsWith("/"));
    out.push({ at: Number(at), name: name!, paths: name!.startsWith("rename") ? paths.slice(-2) : paths });
  }
  return out.sort((a, b) => a.at - b.at);
}

const synced = (list: Call[], path: string) => list.filter((c) => (c.name === "fsync" || c.name === "fdatasync") && c.paths[0] === path);
const renamedTo = (list: Call[], path: string) => list.filter((c) => c.name.startsWith("rename") && c.paths[1] === path);

async function video(id: string): Promise<VideoJson> {
  return (await (await fetch(`${base}/api/videos/${id}`, { headers: AUTH })).json()) as VideoJson;
}

test.skipIf(!runs)("an upload, its processing and its HLS ladder are on the disk before Spool says so; SQLite commits are synced", async () => {
  // Not faststart: processing remuxes it, so the stored file is one Spool wrote itself.
  const source = await makeVideo({ seconds: 3, width: 320, height: 240, faststart: false });
  const sent = Date.now() / 1000;
  const response = await uploadMultipart(base, source, { name: "durable.mp4", type: "video/mp4" });
  const answered = Date.now() / 1000;
  expect(response.status).toBe(201);
  const { id } = (await response.json()) as { id: string };
  const videoDir = join(dataDir, "videos", id);

  // The 201: the received bytes, synced, then renamed into the video's directory, itself synced.
  let list = await calls();
  const [accepted] = renamedTo(list, join(videoDir, "incoming"));
  expect(accepted).toBeDefined();
  expect(accepted!.at).toBeLessThan(answered);
  const received = accepted!.paths[0]!;
  expect(synced(list, received).filter((c) => c.at >= sent && c.at <= accepted!.at)).not.toEqual([]);
  expect(synced(list, videoDir).filter((c) => c.at >= accepted!.at && c.at <= answered)).not.toEqual([]);
  // The new video directory is an entry of videos/.
  expect(synced(list, join(dataDir, "videos")).filter((c) => c.at >= sent && c.at <= answered)).not.toEqual([]);
  // synchronous=FULL: the commit that accepted it synced the WAL before the answer.
  expect(synced(list, join(dataDir, "spool.db-wal")).filter((c) => c.at >= sent && c.at <= answered)).not.toEqual([]);

  // Ready: the remux and the poster synced after they were renamed into place, and the directory.
  let current = await video(id);
  for (let i = 0; i < 600 && current.status === "processing"; i++) current = (await Bun.sleep(50), await video(id));
  const readySeen = Date.now() / 1000;
  expect(current.status).toBe("ready");
  list = await calls();
  const stored = join(videoDir, "source.mp4");
  const poster = join(videoDir, "poster.jpg");
  const [storedAt] = renamedTo(list, stored);
  const [posterAt] = renamedTo(list, poster);
  expect(storedAt && posterAt).toBeDefined();
  const after = Math.max(storedAt!.at, posterAt!.at);
  for (const path of [stored, poster, videoDir]) {
    expect({ path, synced: synced(list, path).some((c) => c.at >= (path === poster ? posterAt! : storedAt!).at && c.at <= readySeen) }).toEqual({ path, synced: true });
  }
  expect(synced(list, videoDir).some((c) => c.at >= after && c.at <= readySeen)).toBe(true);

  // The HLS ladder: every file synced where it was built, before the swap; the swap synced.
  for (let i = 0; i < 1200 && current.hls?.status !== "ready" && current.hls?.status !== "failed"; i++) current = (await Bun.sleep(100), await video(id));
  const hlsSeen = Date.now() / 1000;
  expect(current.hls?.status).toBe("ready");
  list = await calls();
  const hls = join(videoDir, "hls");
  const [published] = renamedTo(list, hls);
  expect(published).toBeDefined();
  const built = published!.paths[0]!;
  const files = filesUnder(hls);
  expect(files).toContain("master.m3u8");
  const unsynced = files.filter((f) => !synced(list, join(built, f)).some((c) => c.at <= published!.at));
  expect(unsynced).toEqual([]);
  expect(synced(list, videoDir).some((c) => c.at >= published!.at && c.at <= hlsSeen)).toBe(true);
}, 180_000);

test.skipIf(!traceable)("a put into the local store (how the library-id marker gets into DATA_DIR) is synced before its rename, and its directory after", async () => {
  const dir = await mkdtemp(join(tmpdir(), "spool-durable-put-"));
  try {
    const root = join(dir, "data");
    const source = join(dir, "marker.txt");
    await Bun.write(source, "library\n");
    const log = join(dir, "put.log");
    const script = `const { LocalStore } = await import(${JSON.stringify(join(ROOT, "src/storage/local-store.ts"))}); await new LocalStore(${JSON.stringify(root)}).putFile("library-id", ${JSON.stringify(source)});`;
    const run = Bun.spawnSync([strace!, "-f", "-qq", "-y", "-ttt", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", "-o", log, "--", process.execPath, "-e", script]);
    expect(run.exitCode).toBe(0);
    const list = await callsIn(log);
    const dest = join(root, "library-id");
    const [renamed] = renamedTo(list, dest);
    expect(renamed).toBeDefined();
    expect(await readFile(dest, "utf8")).toBe("library\n");
    expect(synced(list, renamed!.paths[0]!).some((c) => c.at <= renamed!.at)).toBe(true);
    expect(synced(list, root).some((c) => c.at >= renamed!.at)).toBe(true);
    // DATA_DIR itself was new: an entry of its parent.
    expect(synced(list, dir).length).toBeGreaterThan(0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
