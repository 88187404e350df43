/**
 * A full disk (an 8 MiB tmpfs as DATA_DIR, the database file on it too): an upload is a JSON 507
 * with Retry-After, never a 500 or a crash, and keeps nothing; processing that runs out of room
 * waits, its bytes kept, instead of failing the video; a tus PATCH is a 507 that keeps the bytes
 * it stored, so the upload resumes once there is room. Needs root to mount the tmpfs
 * (CI runs as root); elsewhere it is skipped, saying why.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, rmSync, statSync, statfsSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectError, filesUnder, uploadMultipart, waitUntilSettled } from "../helpers/library.ts";
import { makeVideo } from "../helpers/media.ts";
import { TRANSCODE_DEFAULTS } from "../../src/config.ts";
import { defaultStorageConfig } from "../../src/storage/index.ts";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";

const root = await mkdtemp(join(tmpdir(), "spool-full-"));
const mount = join(root, "small");
await mkdir(mount);
const mounted = process.getuid?.() === 0 && Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount]).exitCode === 0;
if (!mounted) console.warn("disk-full.test.ts: skipped (mounting a tmpfs needs root)");

let spool: TestSpool;
beforeAll(async () => {
  const dataDir = join(mount, "data");
  // Local storage whatever the suite's pass (its bytes must land on the small disk); a short
  // retry base, so that a job that waited for room runs again within the test.
  if (mounted) spool = await startTestSpool({ dataDir, storage: defaultStorageConfig(dataDir), seedDemo: false, maxUploadBytes: 64 * 1024 * 1024, jobKinds: ["ingest"], transcode: { ...TRANSCODE_DEFAULTS, retryBaseMs: 300 } });
});
afterAll(async () => {
  await spool?.stop();
  // Lazily: the test process may still hold a file there (the tus store's) until it exits.
  if (mounted) Bun.spawnSync(["umount", "-l", mount]);
  await rm(root, { recursive: true, force: true });
});

const TUS = { "tus-resumable": "1.0.0" };
const listIds = async () => ((await (await fetch(`${spool.url}/api/videos?status=uploading`, { headers: AUTH })).json()) as { items: { id: string }[] }).items.map((v) => v.id);

test.skipIf(!mounted)("a multipart upload larger than the free space: 507 insufficient_storage with Retry-After, nothing kept, the server lives on", async () => {
  const form = new FormData();
  form.append("title", "too big");
  form.append("file", new Blob([crypto.getRandomValues(new Uint8Array(65536)), new Uint8Array(10 * 1024 * 1024)]), "big.mp4");
  const response = await fetch(`${spool.url}/api/videos`, { method: "POST", headers: AUTH, body: form });
  const body = await expectError(response, 507, "insufficient_storage");
  expect(body.error.message).toContain("no space left");
  expect(response.headers.get("retry-after")).toBe("60");
  expect(filesUnder(join(spool.dataDir, "tmp"))).toEqual([]);
  expect(await listIds()).toEqual([]);
  expect((await fetch(`${spool.url}/health`)).status).toBe(200);
});

test.skipIf(!mounted)("processing that meets a full disk (the faststart remux): the video waits, its received bytes kept, and is ready once there is room", async () => {
  const source = await makeVideo({ seconds: 20, width: 640, height: 360, faststart: false });
  const size = statSync(source).size;
  // Room for the upload and the database's writes, not for its remux beside it (about its size).
  const filler = join(spool.dataDir, "filler");
  const free = () => {
    const fs = statfsSync(spool.dataDir);
    return fs.bavail * fs.bsize;
  };
  expect(size).toBeGreaterThan(768 * 1024);
  writeFileSync(filler, new Uint8Array(Math.max(0, free() - size - 256 * 1024)));
  try {
    const uploaded = await uploadMultipart(spool.url, source, { name: "tight.mp4", type: "video/mp4" });
    expect(uploaded.status).toBe(201);
    const { id } = (await uploaded.json()) as { id: string };
    const job = async () => (await spool.ctx.jobs.forVideo(id, "ingest")).map((j) => ({ state: j.state, attempts: j.attempts, error: j.error }));
    let seen = await job();
    for (let i = 0; i < 100 && !seen[0]?.error; i++) seen = (await Bun.sleep(100), await job());
    expect(seen).toEqual([{ state: "queued", attempts: 0, error: expect.stringContaining("no space left on the server's disk") }]);
    expect((await spool.ctx.library.get(id))?.status).toBe("processing");
    expect(existsSync(spool.ctx.library.storage.stagedPath(id))).toBe(true);
    rmSync(filler);
    const video = await waitUntilSettled(spool.url, id, 30_000);
    expect({ status: video.status, error: video.error }).toEqual({ status: "ready", error: null });
    await fetch(`${spool.url}/api/videos/${id}`, { method: "DELETE", headers: AUTH });
  } finally {
    rmSync(filler, { force: true });
  }
});

test.skipIf(!mounted)("a tus PATCH past the free space: 507, and the bytes it stored are kept for the upload to resume", async () => {
  const size = 10 * 1024 * 1024;
  const created = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, ...TUS, "upload-length": String(size) } });
  expect(created.status).toBe(201);
  const url = `${spool.url}${created.headers.get("location")}`;
  const patch = await fetch(url, { method: "PATCH", headers: { ...TUS, "content-type": "application/offset+octet-stream", "upload-offset": "0" }, body: new Uint8Array(size) });
  await expectError(patch, 507, "insufficient_storage");
  const head = await fetch(url, { method: "HEAD", headers: TUS });
  expect(head.status).toBe(200);
  const offset = Number(head.headers.get("upload-offset"));
  expect(offset).toBeGreaterThan(0);
  expect(offset).toBeLessThan(size);
  expect((await fetch(`${spool.url}/health`)).status).toBe(200);
});
