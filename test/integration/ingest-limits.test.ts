/**
 * MAX_DURATION_S, MAX_PIXELS and MAX_FPS against a real server, real ffmpeg-made media and real
 * SQLite, through every way in: multipart, tus (the last PATCH, and creation-with-upload), and
 * the `ingest` CLI. A refusal is 422 with a message naming the limit and the value found, and
 * leaves no row and no file behind.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openDatabase } from "../../src/db/client.ts";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as tus from "tus-js-client";
import { expectError, filesUnder, uploadMultipart, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { makeAudio, makeVideo } from "../helpers/media.ts";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";

const ROOT = resolve(import.meta.dir, "../..");
const NO_HLS = ["ingest"] as const;
/** Small limits, so that small test media exceed them. */
const LIMITS = { maxDurationS: 2, maxPixels: 320 * 240, maxFps: 30 };

let spool: TestSpool;
let scratch: string;
beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false, jobKinds: NO_HLS, ...LIMITS });
  scratch = await mkdtemp(join(tmpdir(), "spool-limits-"));
});
afterAll(async () => {
  await spool?.stop();
  await rm(scratch, { recursive: true, force: true });
});

/** Every row in the database and every file in DATA_DIR but the database's and the secrets'. */
async function snapshot(dataDir: string, databaseUrl = dataDir === spool?.dataDir ? spool.config.databaseUrl : `file:${join(dataDir, "spool.db")}`) {
  const handle = await openDatabase(databaseUrl);
  try {
    const rows = (await handle.db.select({ id: handle.tables.videos.id }).from(handle.tables.videos)).map((r) => r.id).sort();
    const files = filesUnder(dataDir).filter((f) => !/^(spool\.db.*|api-key|signing-secret)$/.test(f));
    return { rows, files };
  } finally {
    await handle.close();
  }
}

/** Waits for the server to finish with a refused upload's files (a tus store cleans up after answering). */
async function settledSnapshot(dataDir: string, expected: Awaited<ReturnType<typeof snapshot>>) {
  let now = await snapshot(dataDir);
  for (let i = 0; i < 200 && JSON.stringify(now) !== JSON.stringify(expected); i++) {
    await Bun.sleep(50);
    now = await snapshot(dataDir);
  }
  return now;
}

type Case = { name: string; media: () => Promise<string>; limit: string; message: RegExp };

const CASES: Case[] = [
  {
    name: "longer than MAX_DURATION_S",
    media: () => makeVideo({ seconds: 4, width: 160, height: 120 }),
    limit: "MAX_DURATION_S",
    message: /^The video is 4(\.\d+)? s long; this server accepts at most 2 s \(MAX_DURATION_S\)$/,
  },
  {
    name: "an audio file longer than MAX_DURATION_S",
    media: () => makeAudio({ seconds: 4, format: "mp3" }),
    limit: "MAX_DURATION_S",
    message: /^The audio file is 4(\.\d+)? s long; this server accepts at most 2 s \(MAX_DURATION_S\)$/,
  },
  {
    name: "more pixels than MAX_PIXELS",
    media: () => makeVideo({ seconds: 1, width: 640, height: 360 }),
    limit: "MAX_PIXELS",
    message: /^The video is 640x360 \(230400 pixels a frame\); this server accepts at most 76800 pixels a frame \(MAX_PIXELS\)$/,
  },
  {
    name: "faster than MAX_FPS",
    media: () => makeVideo({ seconds: 1, width: 160, height: 120, fps: 60 }),
    limit: "MAX_FPS",
    message: /^The video runs at 60 frames per second; this server accepts at most 30 \(MAX_FPS\)$/,
  },
];

function tusUpload(data: Buffer, options: tus.UploadOptions): Promise<{ error?: tus.DetailedError; url: string }> {
  return new Promise((done) => {
    const upload: tus.Upload = new tus.Upload(data, {
      endpoint: `${spool.url}/api/uploads`,
      headers: AUTH,
      retryDelays: [],
      ...options,
      onError: (error) => done({ error: error as tus.DetailedError, url: upload.url ?? "" }),
      onSuccess: () => done({ url: upload.url ?? "" }),
    });
    upload.start();
  });
}

function expectRefusal(status: number, bodyText: string, message: RegExp): void {
  expect(status).toBe(422);
  const body = JSON.parse(bodyText) as { error: { code: string; message: string } };
  expect(body.error.code).toBe("media_limit_exceeded");
  expect(body.error.message).toMatch(message);
}

describe("within the limits", () => {
  test("exactly at every limit is accepted", async () => {
    const source = await makeVideo({ seconds: 1.5, width: 320, height: 240, fps: 30 });
    const response = await uploadMultipart(spool.url, source);
    expect(response.status).toBe(201);
    const video = await waitUntilSettled(spool.url, ((await response.json()) as VideoJson).id);
    expect(video).toMatchObject({ status: "ready", width: 320, height: 240 });
    expect((await fetch(`${spool.url}/api/videos/${video.id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
  });
});

describe.each(CASES)("$name: 422 naming the limit, nothing kept", ({ media, message }) => {
  test("multipart POST /api/videos", async () => {
    const before = await snapshot(spool.dataDir);
    const response = await uploadMultipart(spool.url, await media());
    const body = await expectError(response, 422, "media_limit_exceeded");
    expect(body.error.message).toMatch(message);
    expect(await settledSnapshot(spool.dataDir, before)).toEqual(before);
  });

  test("tus: the last PATCH", async () => {
    const before = await snapshot(spool.dataDir);
    const data = Buffer.from(await Bun.file(await media()).arrayBuffer());
    const result = await tusUpload(data, { metadata: { filename: "over.mp4" } });
    const response = result.error?.originalResponse;
    expect(response).toBeDefined();
    expectRefusal(response!.getStatus(), response!.getBody(), message);
    expect(result.url).toContain("/api/uploads/");
    await expectError(await fetch(`${spool.url}/api/videos/${result.url.slice(result.url.lastIndexOf("/") + 1).split(".")[0]}`, { headers: AUTH }), 404, "not_found");
    expect(await settledSnapshot(spool.dataDir, before)).toEqual(before);
  });

  test("tus: creation-with-upload (the whole file in the creating POST)", async () => {
    const before = await snapshot(spool.dataDir);
    const data = Buffer.from(await Bun.file(await media()).arrayBuffer());
    const response = await fetch(`${spool.url}/api/uploads`, {
      method: "POST",
      headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": String(data.length), "content-type": "application/offset+octet-stream" },
      body: data,
    });
    expectRefusal(response.status, await response.text(), message);
    expect(await settledSnapshot(spool.dataDir, before)).toEqual(before);
  });
});

describe("bun run ingest", () => {
  async function ingest(dataDir: string, env: Record<string, string>, ...args: string[]) {
    const proc = Bun.spawn([process.execPath, "src/cli/ingest.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: "", ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { stdout, stderr, code };
  }

  test("refuses media over MAX_DURATION_S, MAX_PIXELS or MAX_FPS from the environment; keeps nothing of them", async () => {
    const dataDir = join(scratch, "cli");
    const env = { MAX_DURATION_S: "2", MAX_PIXELS: String(320 * 240), MAX_FPS: "30" };
    const ok = await ingest(dataDir, env, await makeVideo({ seconds: 1, width: 160, height: 120 }));
    expect(ok.code).toBe(0);
    const kept = JSON.parse(ok.stdout) as VideoJson;
    expect(kept.status).toBe("ready");
    const before = await snapshot(dataDir);
    expect(before.rows).toEqual([kept.id]);
    for (const { media, message } of CASES) {
      const refused = await ingest(dataDir, env, await media());
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe("");
      const line = refused.stderr.trim().split("\n").at(-1)!;
      expect(line).toStartWith("ingest: ");
      expect(line.slice("ingest: ".length)).toMatch(message);
      expect(await snapshot(dataDir)).toEqual(before);
    }
    // 0 means no limit.
    const unlimited = await ingest(dataDir, { MAX_DURATION_S: "0", MAX_PIXELS: "0", MAX_FPS: "0" }, await makeVideo({ seconds: 4, width: 640, height: 360, fps: 60 }));
    expect(unlimited.code).toBe(0);
    expect(JSON.parse(unlimited.stdout)).toMatchObject({ status: "ready", width: 640, height: 360 });
  }, 60_000);
});

test("the demo clip Spool seeds itself is exempt (its 8 s are over MAX_DURATION_S=2 here)", async () => {
  const seeded = await startTestSpool({ seedDemo: true, jobKinds: NO_HLS, ...LIMITS });
  try {
    const demo = (await (await fetch(`${seeded.url}/api/videos/demo`)).json()) as VideoJson;
    expect(demo).toMatchObject({ status: "ready", duration: 8, width: 640, height: 360 });
  } finally {
    await seeded.stop();
  }
});
