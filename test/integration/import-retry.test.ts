/**
 * POST /api/videos/:id/retry: a failed import downloads its source URL again (the URL kept in
 * the video's last `import` job), from a local HTTP server started here that fails on demand.
 * Only failed imports are retried (409 otherwise, one winner when two race), with the key.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { expectError, uploadMultipart, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { hasFfmpeg, makeVideo, sha256File } from "../helpers/media.ts";
import { settledJobs } from "../helpers/jobs.ts";

let spool: TestSpool;
let source: ReturnType<typeof Bun.serve>;
let file: string;
/** What the source's /video.mp4 answers: the file, or this error status. */
let failWith: number | null = 503;
let hits = 0;

beforeAll(async () => {
  if (!hasFfmpeg) throw new Error("ffmpeg/ffprobe are needed for the import tests");
  file = await makeVideo({ seconds: 2, faststart: true });
  source = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => {
      if (new URL(req.url).pathname !== "/video.mp4") return new Response("no such file", { status: 404 });
      hits++;
      return failWith === null ? new Response(Bun.file(file)) : new Response("try later", { status: failWith });
    },
  });
  // No HLS builds: they would compete with the imports for the CPU and are not what is tested.
  spool = await startTestSpool({ seedDemo: false, imports: { allowPrivate: true }, jobKinds: ["ingest", "import"] });
});

afterAll(async () => {
  await spool?.stop();
  source?.stop(true);
});

const retry = (id: string, headers: Record<string, string> = AUTH) => fetch(`${spool.url}/api/videos/${id}/retry`, { method: "POST", headers });

async function failedImport(): Promise<VideoJson> {
  failWith = 503;
  const response = await fetch(`${spool.url}/api/videos`, {
    method: "POST",
    headers: { ...AUTH, "content-type": "application/json" },
    body: JSON.stringify({ url: `http://127.0.0.1:${source.port}/video.mp4`, title: "Flaky source" }),
  });
  expect(response.status).toBe(201);
  const failed = await waitUntilSettled(spool.url, ((await response.json()) as VideoJson).id);
  expect(failed.status).toBe("failed");
  expect(failed.error).toBe(`Import from 127.0.0.1:${source.port} failed: source answered 503 Service Unavailable`);
  return failed;
}

describe("retrying a failed import", () => {
  test("202 with the video importing again, then ready with the source's bytes; the title stays", async () => {
    const failed = await failedImport();
    const before = hits;
    failWith = null;
    const response = await retry(failed.id);
    expect(response.status).toBe(202);
    const json = (await response.json()) as VideoJson;
    expect(json).toMatchObject({ id: failed.id, status: "importing", error: null, title: "Flaky source" });
    const ready = await waitUntilSettled(spool.url, failed.id);
    expect(ready.status).toBe("ready");
    expect(ready.sha256).toBe(await sha256File(file));
    expect(hits).toBe(before + 1);
    // The same URL, through the queue: a second import job, done.
    const jobs = await settledJobs(spool.ctx.jobs, failed.id, "import");
    expect(jobs.map((j) => [j.state, JSON.parse(j.payload!).url])).toEqual([
      ["done", `http://127.0.0.1:${source.port}/video.mp4`],
      ["done", `http://127.0.0.1:${source.port}/video.mp4`],
    ]);
    // Ready now: nothing to retry.
    await expectError(await retry(failed.id), 409, "import_not_failed");
  });

  test("a retry that fails again is failed again with the new reason, and can be retried once more", async () => {
    const failed = await failedImport();
    failWith = 500;
    expect((await retry(failed.id)).status).toBe(202);
    const again = await waitUntilSettled(spool.url, failed.id);
    expect(again.status).toBe("failed");
    expect(again.error).toBe(`Import from 127.0.0.1:${source.port} failed: source answered 500 Internal Server Error`);
    failWith = null;
    expect((await retry(failed.id)).status).toBe(202);
    expect((await waitUntilSettled(spool.url, failed.id)).status).toBe("ready");
  });

  test("two retries at once: one 202, one 409 (compare-and-set), one download", async () => {
    const failed = await failedImport();
    failWith = null;
    const before = hits;
    const answers = await Promise.all([retry(failed.id), retry(failed.id)]);
    expect(answers.map((r) => r.status).sort()).toEqual([202, 409]);
    expect((await waitUntilSettled(spool.url, failed.id)).status).toBe("ready");
    expect(hits).toBe(before + 1);
  });

  test("409 for a failed upload (nothing to download again), 404 for no video, 401 without the key", async () => {
    const uploaded = await uploadMultipart(spool.url, file, { name: "up.mp4" });
    expect(uploaded.status).toBe(201);
    const { id } = (await uploaded.json()) as VideoJson;
    expect((await waitUntilSettled(spool.url, id)).status).toBe("ready");
    await spool.ctx.library.markFailed(id, "made to fail by the test");
    const refused = await expectError(await retry(id), 409, "import_not_failed");
    expect(refused.error.message).toBe("Only a failed import can be retried, and this video was uploaded, not imported");
    expect((await spool.ctx.library.get(id))!.status).toBe("failed");
    await expectError(await retry("AAAAAAAAAAAAAAAAAAAAAA"), 404, "not_found");
    await expectError(await retry(id, {}), 401, "unauthorized");
  });
});

describe("an import job run again after its video moved on", () => {
  test("never downloads, and never fails a video that is ready (a job handed back after it had finished)", async () => {
    failWith = null;
    const created = await fetch(`${spool.url}/api/videos`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify({ url: `http://127.0.0.1:${source.port}/video.mp4`, title: "Imported once" }),
    });
    const ready = await waitUntilSettled(spool.url, ((await created.json()) as VideoJson).id);
    expect(ready.status).toBe("ready");
    const bytes = await (await fetch(`${spool.url}${ready.streamUrl}`)).arrayBuffer();
    // The same import again, from a source that now fails: the download is not even tried.
    failWith = 503;
    const before = hits;
    const imports = (spool.ctx as unknown as { imports: { runImport(id: string, url: string): Promise<unknown> } }).imports;
    await imports.runImport(ready.id, `http://127.0.0.1:${source.port}/video.mp4`);
    expect(hits).toBe(before);
    const after = (await (await fetch(`${spool.url}/api/videos/${ready.id}`, { headers: AUTH })).json()) as VideoJson;
    expect(after.status).toBe("ready");
    expect(await (await fetch(`${spool.url}${ready.streamUrl}`)).arrayBuffer()).toEqual(bytes);
  });

  test("a download that ends after its video left `importing` does not fail it", async () => {
    const library = (spool.ctx as unknown as { library: { markFailed(id: string, message: string, from?: string): Promise<{ status: string } | undefined> } }).library;
    const ready = ((await (await fetch(`${spool.url}/api/videos?status=ready`, { headers: AUTH })).json()) as { items: VideoJson[] }).items[0]!;
    expect((await library.markFailed(ready.id, "late failure", "importing"))?.status).toBe("ready");
    expect((await fetch(`${spool.url}${ready.streamUrl}`, { headers: { range: "bytes=0-1" } })).status).toBe(206);
  });
});
