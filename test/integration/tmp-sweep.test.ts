/**
 * DATA_DIR/tmp is shared by every process on a DATA_DIR (the server and its workers, a CLI
 * ingest, a transcode worker). A starting server removes what dead processes left there, and
 * never the files of a live one: a CLI ingest in progress keeps its half-written file. And on
 * local storage the orphan sweep removes video directories whose row is gone.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { filesUnder } from "../helpers/library.ts";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { OrphanSweeper } from "../../src/storage/orphans.ts";

let spool: TestSpool | undefined;
let live: ReturnType<typeof Bun.spawn> | undefined;
let root: string | undefined;
afterAll(async () => {
  live?.kill();
  await spool?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

test("a starting server sweeps tmp/ of dead processes only", async () => {
  root = await mkdtemp(join(tmpdir(), "spool-sweep-"));
  const dataDir = join(root, "data");
  const tmp = join(dataDir, "tmp");
  const exited = Bun.spawn(["true"]);
  await exited.exited;
  live = Bun.spawn(["sleep", "60"]);
  const owners = {
    dead: `${hostname()}:${exited.pid}:deadbeef`,
    live: `${hostname()}:${live.pid}:a11ve000`,
    remote: "another-host.example:4242:remote00",
    // This process's pid, but no Storage of this process: a previous life (a container's pid 1).
    previousLife: `${hostname()}:${process.pid}:0ld11fe0`,
  };
  for (const owner of Object.values(owners)) {
    await mkdir(join(tmp, owner), { recursive: true });
    await writeFile(join(tmp, owner, "upload.part"), "half a video");
  }
  await writeFile(join(tmp, "from-an-older-version.part"), "loose");

  spool = await startTestSpool({ dataDir, seedDemo: false });
  const own = spool.ctx.library.storage.ownTmpDir;
  expect(own.startsWith(tmp + "/")).toBe(true);
  expect(filesUnder(tmp)).toEqual([`${owners.live}/upload.part`, `${owners.remote}/upload.part`].sort());

  // The server's own temp files go in its own directory, which a later sweep by another process spares.
  const part = spool.ctx.library.storage.tempPath();
  expect(part.startsWith(own + "/")).toBe(true);
  await writeFile(part, "in progress");
  const other = await startTestSpool({ dataDir, seedDemo: false });
  try {
    expect(filesUnder(tmp)).toContain(part.slice(tmp.length + 1));
  } finally {
    await other.stop();
  }
  await rm(part);
});

test("a running server keeps sweeping; a clean exit leaves no directory behind, CLI ingests included", async () => {
  const own = await mkdtemp(join(tmpdir(), "spool-sweep-"));
  const server = await startTestSpool({ seedDemo: false, dataDir: join(own, "data") });
  const tmp = join(server.dataDir, "tmp");
  try {
    // A CLI ingest that ran to completion: its own directory is gone with it.
    const cli = Bun.spawn([process.execPath, join(import.meta.dir, "../../src/cli/ingest.ts"), join(import.meta.dir, "../../fixtures/demo.mp4"), "--title", "from the CLI"], {
      env: { ...process.env, DATA_DIR: server.dataDir, DATABASE_URL: server.config.databaseUrl },
      stdout: "ignore",
      stderr: "pipe",
    });
    expect(await cli.exited).toBe(0);
    // One killed the hard way leaves its directory, which the running server removes.
    const exited = Bun.spawn(["true"]);
    await exited.exited;
    const dead = join(tmp, `${hostname()}:${exited.pid}:k111ed00`);
    await mkdir(dead);
    await writeFile(join(dead, "upload.part"), "cut short");
    const deadline = Date.now() + 10_000;
    while ((await readdir(tmp)).includes(`${hostname()}:${exited.pid}:k111ed00`) && Date.now() < deadline) await Bun.sleep(100);
    expect(await readdir(tmp)).toEqual([basename(server.ctx.library.storage.ownTmpDir)]);
  } finally {
    await server.stop();
  }
  // The data directory outlives the server (it was given one); its tmp/ is empty again.
  expect(await readdir(tmp)).toEqual([]);
  await rm(own, { recursive: true, force: true });
}, 30_000);

test("local storage: a video directory whose row is gone (a DELETE cut short by a crash) is swept once past the grace; a video's own, and names that are no video id, are not", async () => {
  const own = await startTestSpool({ jobKinds: ["ingest"] });
  try {
    const videos = join(own.dataDir, "videos");
    const orphan = "CCCCCCCCCCCCCCCCCCCCCC";
    await mkdir(join(videos, orphan, "hls"), { recursive: true });
    await writeFile(join(videos, orphan, "source.mp4"), "left by a crash");
    await writeFile(join(videos, orphan, "hls", "master.m3u8"), "#EXTM3U");
    await mkdir(join(videos, "not a video id"), { recursive: true });
    const known = (id: string) => own.ctx.library.ownsFiles(id);
    const source = own.ctx.library.storage.orphanSource();
    // Within the grace period: nothing goes (a write may be racing its video's deletion).
    expect(await new OrphanSweeper(source, known, { graceMs: 3_600_000 }).sweep()).toEqual([]);
    expect(await new OrphanSweeper(source, known, { graceMs: 0 }).sweep(Date.now() + 1000)).toEqual([orphan]);
    expect((await readdir(videos)).sort()).toEqual(["demo", "not a video id"]);
    expect(await own.ctx.library.get("demo")).toMatchObject({ status: "ready" });
  } finally {
    await own.stop();
  }
});
