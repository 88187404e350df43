/**
 * Resumable uploads (tus) while the database cannot answer, against a real PostgreSQL: behind a
 * relay that is stopped (down) or frozen (stalled), or with the videos table locked by another
 * session (reads answer, writes stall). Creation answers 503 database_unavailable with
 * Retry-After like every other route; a final PATCH whose hand-over meets the outage answers
 * the same and keeps the bytes; and the upload is handed to processing once the database
 * answers again, without the client (which hears from HEAD that the upload is complete) sending
 * anything more.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { readFile, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { SQL } from "bun";
import { expectError, filesUnder, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { makeVideo } from "../helpers/media.ts";
import { postgresAvailable, startPostgres, type TestPostgres } from "../helpers/postgres.ts";
import { startRelay, type Relay } from "../helpers/relay.ts";
import type { JobKind } from "../../src/db/schema/shared.ts";
import { AUTH, startTestSpool, withCapturedLogs, type TestSpool } from "../helpers/spool.ts";

setDefaultTimeout(60_000);

const TUS = { "tus-resumable": "1.0.0" };
const CREATE = { ...AUTH, ...TUS };
/** Short, so that a stalled query fails fast (DATABASE_QUERY_TIMEOUT_MS). */
const QUERY_TIMEOUT_MS = 500;
const RETRY_FAILED = "a completed upload could not be handed over; retrying";

let pg: TestPostgres | undefined;
beforeAll(async () => {
  if (postgresAvailable()) pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

/** A Spool on a database of its own, reached through a relay; `directUrl` reaches it without the relay. */
async function spoolBehindRelay(jobKinds: JobKind[] = ["ingest"]): Promise<{ spool: TestSpool; relay: Relay; directUrl: string }> {
  const directUrl = await pg!.createDatabase();
  const url = new URL(directUrl);
  const relay = await startRelay(url.hostname, Number(url.port));
  url.port = String(relay.port);
  const spool = await startTestSpool({ databaseUrl: url.toString(), databaseQueryTimeoutMs: QUERY_TIMEOUT_MS, seedDemo: false, jobKinds });
  return { spool, relay, directUrl };
}

/**
 * Another session on the test database that can hold the videos table in EXCLUSIVE mode: reads
 * of it still answer, writes wait (an outage that starts in the middle of a request).
 */
function videosTableLock(directUrl: string) {
  const sql = new SQL(directUrl, { max: 1 });
  let locked = false;
  return {
    sql,
    async lock(): Promise<void> {
      await sql.unsafe("BEGIN");
      await sql.unsafe("LOCK TABLE videos IN EXCLUSIVE MODE");
      locked = true;
    },
    async unlock(): Promise<void> {
      await sql.unsafe("COMMIT");
      locked = false;
    },
    async close(): Promise<void> {
      if (locked) await sql.unsafe("ROLLBACK").catch(() => {});
      await sql.close();
    },
  };
}

async function createUpload(spool: TestSpool, length: number, filename: string): Promise<{ url: string; uploadId: string; id: string }> {
  const response = await fetch(`${spool.url}/api/uploads`, {
    method: "POST",
    headers: { ...CREATE, "upload-length": String(length), "upload-metadata": `filename ${Buffer.from(filename).toString("base64")}` },
  });
  expect(response.status).toBe(201);
  const url = new URL(response.headers.get("location")!, spool.url).href;
  return { url, uploadId: url.slice(url.lastIndexOf("/") + 1), id: response.headers.get("spool-video-id")! };
}

const finalPatch = (url: string, body: Uint8Array<ArrayBuffer>) => fetch(url, { method: "PATCH", headers: { ...TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream" }, body });

/** A 503 database_unavailable as every route answers it, and still a tus answer. */
async function expectDatabaseUnavailable(response: Response): Promise<void> {
  expect({ status: response.status, retryAfter: response.headers.get("retry-after"), tus: response.headers.get("tus-resumable") }).toEqual({ status: 503, retryAfter: "5", tus: "1.0.0" });
  await expectError(response, 503, "database_unavailable");
}

async function head(url: string): Promise<{ status: number; offset: string | null; length: string | null }> {
  const response = await fetch(url, { method: "HEAD", headers: TUS });
  return { status: response.status, offset: response.headers.get("upload-offset"), length: response.headers.get("upload-length") };
}

/** The video's status as the API says it (404: no video), polled until `done` or the deadline. */
async function statusUntil(spool: TestSpool, id: string, done: (status: string | number) => boolean, timeoutMs = 25_000): Promise<string | number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${spool.url}/api/videos/${id}`, { headers: AUTH });
    const status = response.status === 200 ? ((await response.json()) as VideoJson).status : response.status;
    if (done(status) || Date.now() > deadline) return status;
    await Bun.sleep(200);
  }
}

/** Makes the bytes of uploads look older than the retry pass's grace for a PATCH still in flight. */
async function age(spool: TestSpool, ...uploadIds: string[]): Promise<void> {
  const past = new Date(Date.now() - 60_000);
  for (const uploadId of uploadIds) await utimes(join(spool.dataDir, "uploads", uploadId), past, past);
}

describe.skipIf(!postgresAvailable())("tus while the database is unavailable", () => {
  test("creation while it is down: 503 database_unavailable with Retry-After, not a logged 500; nothing kept", async () => {
    const { spool, relay } = await spoolBehindRelay();
    try {
      await relay.stop();
      await withCapturedLogs(async (lines) => {
        const response = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...CREATE, "upload-length": "100" } });
        await expectDatabaseUnavailable(response);
        expect(lines().filter((line) => (line.level as number) >= 50)).toEqual([]);
        expect(lines().some((line) => line.msg === "tus hook failed")).toBe(false);
      });
      expect(filesUnder(join(spool.dataDir, "uploads"))).toEqual([]);
    } finally {
      await spool.stop().catch(() => {});
    }
  });

  test("a final PATCH during an outage: 503, the bytes stay, and the upload is handed over once the database answers, the client doing nothing more", async () => {
    const { spool, relay } = await spoolBehindRelay();
    try {
      const media = new Uint8Array(await readFile(await makeVideo()));
      const junk = new Uint8Array(1000).fill(7);
      const good = await createUpload(spool, media.length, "good.mp4");
      const bad = await createUpload(spool, junk.length, "bad.mp4");
      await withCapturedLogs(async (lines) => {
        relay.freeze();
        await expectDatabaseUnavailable(await finalPatch(good.url, media));
        await expectDatabaseUnavailable(await finalPatch(bad.url, junk));
        // The bytes are kept, and the upload says it is complete: tus-js-client sends nothing more.
        expect(await head(good.url)).toEqual({ status: 200, offset: String(media.length), length: String(media.length) });
        expect(await head(bad.url)).toEqual({ status: 200, offset: String(junk.length), length: String(junk.length) });
        expect((await stat(join(spool.dataDir, "uploads", good.uploadId))).size).toBe(media.length);

        // The primary's retry pass (every 5 s) while the database is still down: tries, leaves
        // them, and says so once each, not at every pass.
        // Counted, not replaced: the real query still goes to the (frozen) database.
        const library = spool.ctx.library;
        const get = library.get.bind(library);
        let asked = 0;
        library.get = (id) => {
          if (id === good.id) asked++;
          return get(id);
        };
        await age(spool, good.uploadId, bad.uploadId);
        await Bun.sleep(11_000);
        expect(asked).toBeGreaterThanOrEqual(2);
        expect(lines().filter((line) => line.msg === RETRY_FAILED).map((line) => line.video).sort()).toEqual([good.id, bad.id].sort());
        expect(lines().filter((line) => (line.level as number) >= 50)).toEqual([]);
        expect(await head(good.url)).toEqual({ status: 200, offset: String(media.length), length: String(media.length) });

        relay.thaw();
        // Nothing more from the client: the primary's periodic pass hands both over.
        expect(await statusUntil(spool, good.id, (status) => status !== "uploading")).not.toBe("uploading");
        // The non-media one is refused as its final PATCH would have been (415): no video.
        expect(await statusUntil(spool, bad.id, (status) => status === 404)).toBe(404);
      });
      expect((await waitUntilSettled(spool.url, good.id)).status).toBe("ready");
      // Only what says the accepted one completed (for its HEAD) is left of either.
      expect(filesUnder(join(spool.dataDir, "uploads"))).toEqual([`${good.uploadId}.done`]);
      // A completed upload still says so; a refused one is gone.
      expect(await head(good.url)).toEqual({ status: 200, offset: String(media.length), length: String(media.length) });
      expect((await head(bad.url)).status).toBe(404);
    } finally {
      relay.thaw();
      await spool.stop().catch(() => {});
      await relay.stop();
    }
  });

  test("deleting an uploading video while its row cannot be deleted: 503, and the partial upload stays resumable; deleted once writes go through", async () => {
    const { spool, relay, directUrl } = await spoolBehindRelay();
    const videos = videosTableLock(directUrl);
    try {
      const media = new Uint8Array(await readFile(await makeVideo()));
      const half = Math.floor(media.length / 2);
      const upload = await createUpload(spool, media.length, "half.mp4");
      const first = await fetch(upload.url, { method: "PATCH", headers: { ...TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream" }, body: media.subarray(0, half) });
      expect(first.status).toBe(204);
      // Another session holds the videos table: the DELETE reads the row, then its delete waits.
      await videos.lock();
      const refused = await fetch(`${spool.url}/api/videos/${upload.id}`, { method: "DELETE", headers: AUTH });
      expect(refused.headers.get("retry-after")).toBe("5");
      await expectError(refused, 503, "database_unavailable");
      // The video is as it was: its partial bytes are still there, and the upload resumes.
      expect(await head(upload.url)).toEqual({ status: 200, offset: String(half), length: String(media.length) });
      expect((await stat(join(spool.dataDir, "uploads", upload.uploadId))).size).toBe(half);
      await videos.unlock();
      expect(await statusUntil(spool, upload.id, () => true)).toBe("uploading");

      // Once the database answers, the same DELETE goes through and takes the bytes with it.
      expect((await fetch(`${spool.url}/api/videos/${upload.id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
      expect((await head(upload.url)).status).toBe(404);
      expect(filesUnder(join(spool.dataDir, "uploads"))).toEqual([]);
      expect(await statusUntil(spool, upload.id, () => true)).toBe(404);
    } finally {
      await videos.close();
      await spool.stop().catch(() => {});
      await relay.stop();
    }
  });

  test("deleting a video waiting for processing while its row cannot be deleted: 503, and its job stays queued; both go once writes go through", async () => {
    // No ingest worker here: the video waits, its job queued, for as long as the test needs.
    const { spool, relay, directUrl } = await spoolBehindRelay(["transcode"]);
    const videos = videosTableLock(directUrl);
    const jobsOf = async (id: string) => (await videos.sql`SELECT kind, state FROM jobs WHERE video_id = ${id}`) as { kind: string; state: string }[];
    try {
      const media = new Uint8Array(await readFile(await makeVideo()));
      const upload = await createUpload(spool, media.length, "waiting.mp4");
      expect((await finalPatch(upload.url, media)).status).toBe(204);
      expect(await statusUntil(spool, upload.id, () => true)).toBe("processing");
      expect(await jobsOf(upload.id)).toEqual([{ kind: "ingest", state: "queued" }]);

      await videos.lock();
      await expectError(await fetch(`${spool.url}/api/videos/${upload.id}`, { method: "DELETE", headers: AUTH }), 503, "database_unavailable");
      await videos.unlock();
      // Nothing of the video was given up: a worker will still process it.
      expect(await statusUntil(spool, upload.id, () => true)).toBe("processing");
      expect(await jobsOf(upload.id)).toEqual([{ kind: "ingest", state: "queued" }]);
      expect(existsSync(join(spool.dataDir, "videos", upload.id))).toBe(true);

      expect((await fetch(`${spool.url}/api/videos/${upload.id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
      expect(await jobsOf(upload.id)).toEqual([]);
      expect(existsSync(join(spool.dataDir, "videos", upload.id))).toBe(false);
    } finally {
      await videos.close();
      await spool.stop().catch(() => {});
      await relay.stop();
    }
  });

  test("an outage that starts during the hand-over (reads answer, writes stall): 503, the bytes stay, handed over once writes go through", async () => {
    const { spool, relay, directUrl } = await spoolBehindRelay();
    const videos = videosTableLock(directUrl);
    try {
      const media = new Uint8Array(await readFile(await makeVideo()));
      const upload = await createUpload(spool, media.length, "late.mp4");
      // Another session holds the videos table: the hand-over reads its row, then its writes wait.
      await videos.lock();
      await expectDatabaseUnavailable(await finalPatch(upload.url, media));
      // The video's removal that the failed hand-over attempted did not take the bytes with it.
      expect(existsSync(join(spool.dataDir, "uploads", upload.uploadId))).toBe(true);
      expect(await head(upload.url)).toEqual({ status: 200, offset: String(media.length), length: String(media.length) });
      expect(await statusUntil(spool, upload.id, () => true)).toBe("uploading");

      await videos.unlock();
      expect(await statusUntil(spool, upload.id, (status) => status !== "uploading")).not.toBe("uploading");
      expect((await waitUntilSettled(spool.url, upload.id)).status).toBe("ready");
      expect(filesUnder(join(spool.dataDir, "uploads"))).toEqual([`${upload.uploadId}.done`]);
    } finally {
      await videos.close();
      await spool.stop().catch(() => {});
      await relay.stop();
    }
  });
});
