/**
 * POST /api/videos with a JSON `{url}`: imports from a local HTTP server started here. The
 * first Spool allows private addresses (IMPORT_ALLOW_PRIVATE=1), the second does not (only
 * 127.0.0.1 through IMPORT_ALLOWED_NETWORKS, so a redirect to 127.0.0.2 is a redirect to
 * loopback it must refuse). Every refusal answers or fails as specified and leaves no file.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { expectError, filesUnder, uploadMultipart, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { hasFfmpeg, makeVideo, sha256File } from "../helpers/media.ts";

// Uploads, processing and ffmpeg on a busy 2-core machine take longer than bun's default 5 s.
setDefaultTimeout(30_000);

let open: TestSpool;
let strict: TestSpool;
let source: ReturnType<typeof Bun.serve>;
let loopback2: ReturnType<typeof Bun.serve>;
const hits: { path: string; range: string | null }[] = [];
let faststart: string;
let moovAtEnd: string;
const TEXT = "This is not a video, just a few words of text.\n".repeat(50);

const ENV_KEYS = ["IMPORT_ALLOW_PRIVATE", "IMPORT_ALLOWED_NETWORKS"] as const;
const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

beforeAll(async () => {
  if (!hasFfmpeg) throw new Error("ffmpeg/ffprobe are needed for the import tests");
  faststart = await makeVideo({ seconds: 2, faststart: true });
  moovAtEnd = await makeVideo({ seconds: 2, faststart: false });
  source = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (req) => {
      const url = new URL(req.url);
      hits.push({ path: url.pathname, range: req.headers.get("range") });
      switch (url.pathname) {
        case "/faststart.mp4":
          return new Response(Bun.file(faststart));
        case "/moov-at-end.mp4":
          return new Response(Bun.file(moovAtEnd));
        case "/gzipped.mp4":
          // As S3 serves an object stored with Content-Encoding: gzip, whatever was asked.
          return new Response(Bun.gzipSync(await Bun.file(faststart).bytes()), { headers: { "content-encoding": "gzip", "content-type": "video/mp4" } });
        case "/notes.txt":
          return new Response(TEXT, { headers: { "content-type": "video/mp4" } });
        case "/hop1":
          return Response.redirect(`${url.origin}/hop2`, 302);
        case "/hop2":
          return new Response(null, { status: 301, headers: { location: "/faststart.mp4" } });
        case "/to-loopback":
          return Response.redirect(`http://127.0.0.2:${loopback2.port}/faststart.mp4`, 302);
        case "/big":
          return new Response(new Uint8Array(300_000));
        default:
          return new Response("no such file", { status: 404 });
      }
    },
  });
  loopback2 = Bun.serve({ hostname: "127.0.0.2", port: 0, fetch: () => new Response(Bun.file(faststart)) });
  // The servers read IMPORT_* when they are built (until the app passes Config.imports through).
  process.env.IMPORT_ALLOW_PRIVATE = "1";
  open = await startTestSpool({ seedDemo: false, imports: { allowPrivate: true } });
  delete process.env.IMPORT_ALLOW_PRIVATE;
  process.env.IMPORT_ALLOWED_NETWORKS = "127.0.0.1/32";
  strict = await startTestSpool({ seedDemo: false, maxUploadBytes: 200_000, imports: { allowPrivate: false, allowedNetworks: ["127.0.0.1/32"] } });
  for (const k of ENV_KEYS) (saved[k] === undefined ? delete process.env[k] : (process.env[k] = saved[k]));
});

afterAll(async () => {
  await open?.stop();
  await strict?.stop();
  source?.stop(true);
  loopback2?.stop(true);
});

const src = (path: string) => `http://127.0.0.1:${source.port}${path}`;

function importUrl(spool: TestSpool, body: unknown): Promise<Response> {
  return fetch(`${spool.url}/api/videos`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify(body) });
}

async function started(spool: TestSpool, body: unknown): Promise<VideoJson> {
  const response = await importUrl(spool, body);
  const json = (await response.json()) as VideoJson;
  expect(response.status).toBe(201);
  expect(response.headers.get("location")).toBe(`/api/videos/${json.id}`);
  return json;
}

/** Nothing of the video on disk: no directory, no temporary file. */
function expectNothingKept(spool: TestSpool, id: string) {
  expect(existsSync(join(spool.dataDir, "videos", id))).toBe(false);
  expect(filesUnder(join(spool.dataDir, "tmp")).filter((f) => f.endsWith(".part"))).toEqual([]);
}

async function rowCount(spool: TestSpool): Promise<number> {
  const page = (await (await fetch(`${spool.url}/api/videos?limit=200`, { headers: AUTH })).json()) as { items: unknown[] };
  return page.items.length;
}

describe("import from a URL", () => {
  test("a faststart source: 201 at once, then ready with the very same bytes", async () => {
    const video = await started(open, { url: src("/faststart.mp4"), title: "Imported" });
    expect(video.title).toBe("Imported");
    expect(["uploading", "importing", "processing"]).toContain(video.status);
    const ready = await waitUntilSettled(open.url, video.id);
    expect(ready.status).toBe("ready");
    expect(ready.originalFilename).toBe("faststart.mp4");
    expect(ready.sha256).toBe(await sha256File(faststart));
    const streamed = Buffer.from(await (await fetch(`${open.url}/api/stream/${video.id}`)).arrayBuffer());
    expect(streamed.equals(Buffer.from(await Bun.file(faststart).arrayBuffer()))).toBe(true);
  });

  test("a title is counted in characters once trimmed: 500 emoji fit, 501 letters do not (nothing created)", async () => {
    const emoji = "😀".repeat(500);
    const video = await started(open, { url: src("/faststart.mp4"), title: ` ${emoji} ` });
    expect(video.title).toBe(emoji);
    const before = await rowCount(open);
    const refused = await expectError(await importUrl(open, { url: src("/faststart.mp4"), title: "a".repeat(501) }), 400, "bad_request");
    expect(refused.error.message).toBe("title: at most 500 characters");
    expect(await rowCount(open)).toBe(before);
    expect((await waitUntilSettled(open.url, video.id)).status).toBe("ready");
  });

  test("a moov-at-end source is remuxed to faststart like an upload; the title defaults to the file name", async () => {
    const video = await started(open, { url: src("/moov-at-end.mp4"), playback: "signed" });
    expect(video.title).toBe("moov-at-end");
    expect(video.playback).toBe("signed");
    const ready = await waitUntilSettled(open.url, video.id);
    expect(ready.status).toBe("ready");
    expect(ready.sha256).not.toBe(await sha256File(moovAtEnd));
  });

  test("a source that sends it gzip-compressed anyway: ready with the decoded bytes", async () => {
    const video = await started(open, { url: src("/gzipped.mp4") });
    const ready = await waitUntilSettled(open.url, video.id);
    expect(ready.error ?? null).toBeNull();
    expect(ready.status).toBe("ready");
    expect(ready.sha256).toBe(await sha256File(faststart));
  });

  test("a redirect chain is followed", async () => {
    hits.length = 0;
    const video = await started(open, { url: src("/hop1") });
    const ready = await waitUntilSettled(open.url, video.id);
    expect(ready.status).toBe("ready");
    expect(hits.map((h) => h.path)).toEqual(["/hop1", "/hop2", "/faststart.mp4"]);
  });

  test("the library feed carries the import's progress and its changes", async () => {
    const controller = new AbortController();
    const response = await fetch(`${open.url}/api/videos/events`, { headers: AUTH, signal: controller.signal });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toStartWith("text/event-stream");
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const video = await started(open, { url: src("/faststart.mp4") });
    // This video's own change to ready: the feed also carries other videos' changes (an earlier
    // test's video, ready, whose HLS build is still reporting progress).
    const readyChange = new RegExp(`event: video\\ndata: \\{"id":"${video.id}"[^\\n]*"status":"ready"`);
    const deadline = Date.now() + 20_000;
    while (!readyChange.test(text) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    controller.abort();
    const size = Bun.file(faststart).size;
    expect(text).toContain(`event: progress\ndata: {"id":"${video.id}","bytes":${size},"total":${size}}`);
    expect(text).toMatch(readyChange);
  });

  test("the feed needs the key", async () => {
    await expectError(await fetch(`${open.url}/api/videos/events`), 401, "unauthorized");
  });

  test("file:, data:, ftp: and malformed URLs: 400, nothing created", async () => {
    const before = await rowCount(open);
    for (const url of ["file:///etc/passwd", "data:video/mp4;base64,AAAA", "ftp://example.com/a.mp4", "not a url"]) {
      const body = await expectError(await importUrl(open, { url }), 400, "invalid_url");
      expect(body.error.message).toMatch(/not supported|Not a valid URL/);
    }
    await expectError(await importUrl(open, { title: "no url" }), 400, "bad_request");
    await expectError(await importUrl(open, { url: src("/faststart.mp4"), extra: 1 }), 400, "bad_request");
    await expectError(await importUrl(open, { url: src("/faststart.mp4"), playback: "secret" }), 400, "bad_request");
    expect(await rowCount(open)).toBe(before);
  });

  test("loopback without the flag: 400, nothing created", async () => {
    const before = await rowCount(strict);
    const body = await expectError(await importUrl(strict, { url: `http://127.0.0.2:${loopback2.port}/faststart.mp4` }), 400, "blocked_address");
    expect(body.error.message).toMatch(/^Import from a loopback address is not allowed \(127\.0\.0\.2\)/);
    await expectError(await importUrl(strict, { url: `http://[::1]:${loopback2.port}/x.mp4` }), 400, "blocked_address");
    await expectError(await importUrl(strict, { url: "http://169.254.169.254/latest/meta-data/" }), 400, "blocked_address");
    expect(await rowCount(strict)).toBe(before);
  });

  test("a redirect to loopback: failed, nothing kept", async () => {
    const video = await started(strict, { url: src("/to-loopback") });
    const failed = await waitUntilSettled(strict.url, video.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/^Import from 127\.0\.0\.1:\d+ failed: Redirect to a loopback address is not allowed \(127\.0\.0\.2\)/);
    expectNothingKept(strict, video.id);
  });

  test("not media: failed with the message an upload gets, nothing kept", async () => {
    const notes = join(open.dataDir, "..", "notes.txt");
    await Bun.write(notes, TEXT);
    const upload = await expectError(await uploadMultipart(open.url, notes, { type: "video/mp4" }), 415, "unsupported_media_type");
    const video = await started(open, { url: src("/notes.txt") });
    const failed = await waitUntilSettled(open.url, video.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toBe(upload.error.message);
    expect(failed.title).toBe("notes");
    expectNothingKept(open, video.id);
  });

  test("404: failed with the status in the error, nothing kept", async () => {
    const video = await started(open, { url: src("/missing.mp4") });
    const failed = await waitUntilSettled(open.url, video.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toBe(`Import from 127.0.0.1:${source.port} failed: source answered 404 Not Found`);
    expectNothingKept(open, video.id);
  });

  test("over MAX_UPLOAD_BYTES: failed, nothing kept", async () => {
    const video = await started(strict, { url: src("/big") });
    const failed = await waitUntilSettled(strict.url, video.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/larger than this server accepts: it announces 300 kB, the limit is 200 kB \(MAX_UPLOAD_BYTES\)/);
    expectNothingKept(strict, video.id);
  });

  test("multipart uploads still work on the same route", async () => {
    const response = await uploadMultipart(open.url, faststart, { title: "Plain upload" });
    expect(response.status).toBe(201);
  });
});
