/**
 * Resumable uploads (tus 1.0) with the real tus-js-client against a real server: a connection
 * cut midway and resumed, byte-identical storage, refusal of non-media, termination, expiry,
 * restarts, and every protocol error in Spool's JSON shape.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { appendFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer, connect, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import * as tus from "tus-js-client";
import { expectError, filesUnder, listAll, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { makeLargeVideo, makeVideo, sha256File, topLevelBoxes } from "../helpers/media.ts";
import { AUTH, startTestSpool, withCapturedLogs, type TestSpool } from "../helpers/spool.ts";
import { QueryTimeout } from "../../src/db/deadline.ts";

// Uploads, processing and ffmpeg on a busy 2-core machine take longer than bun's default 5 s.
setDefaultTimeout(30_000);

const NO_HLS = ["ingest"] as const;
const LIMIT = 32 * 1024 * 1024;

let spool: TestSpool;
let scratch: string;
beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false, maxUploadBytes: LIMIT, jobKinds: NO_HLS });
  scratch = await mkdtemp(join(tmpdir(), "spool-tus-"));
});
afterAll(async () => {
  await spool?.stop();
  await rm(scratch, { recursive: true, force: true });
});

const TUS = { "tus-resumable": "1.0.0" };
/** Creating an upload is a management request: it takes the key. */
const CREATE = { ...AUTH, ...TUS };
/** An upload URL's last segment: the upload id, `<video id>.<secret>`. */
const uploadIdOf = (url: string) => url.slice(url.lastIndexOf("/") + 1);
/** The video an upload URL is for: its upload id up to the last '.'. */
const videoIdOf = (url: string) => {
  const uploadId = uploadIdOf(url);
  return uploadId.slice(0, uploadId.lastIndexOf("."));
};
/** The upload URL contract: `/api/uploads/<video id>.<secret>`, never derivable from the video id. */
function expectUploadUrlFor(url: string, videoId: string): void {
  expect(videoId).toMatch(/^[A-Za-z0-9_-]{22}$/);
  const uploadId = uploadIdOf(url);
  expect(url).toMatch(/\/api\/uploads\/[^/]+$/);
  expect(uploadId).toStartWith(`${videoId}.`);
  expect(uploadId).not.toBe(videoId);
  expect(videoIdOf(url)).toBe(videoId);
  expect(uploadId.slice(videoId.length + 1)).toMatch(/^[A-Za-z0-9_-]{22,}$/);
}
const uploadsDir = (s: TestSpool = spool) => join(s.dataDir, "uploads");
/** The tus store's files for one video's upload(s) (bytes and info file, named after the upload id). */
const uploadFiles = (videoId: string, s: TestSpool = spool) => filesUnder(uploadsDir(s)).filter((name) => name.startsWith(videoId));
const b64 = (text: string) => Buffer.from(text).toString("base64");

/**
 * A TCP proxy in front of Spool that can drop the connection after a number of request bytes
 * (a real network failure in the middle of a PATCH body, as far as both ends can tell), or
 * when an answer starts coming back (the request was served; its client never hears how).
 */
class FlakyProxy {
  private server: NetServer;
  cutAfter = 0;
  forwarded = 0;
  /** Answers still to lose: the connection is dropped as the next one arrives. */
  loseAnswers = 0;
  /** On a cut, how long the server's side stays open (a peer that vanished without a word), in ms. */
  holdUpstreamMs = 0;
  port = 0;

  constructor(private readonly upstreamPort: number) {
    this.server = createServer((client: Socket) => {
      const upstream = connect(this.upstreamPort, "127.0.0.1");
      client.on("data", (data: Buffer) => {
        this.forwarded += data.length;
        if (this.cutAfter > 0 && this.forwarded > this.cutAfter) {
          // What came before the cut arrives; nothing after it.
          upstream.write(data.subarray(0, data.length - (this.forwarded - this.cutAfter)));
          this.cutAfter = 0;
          client.destroy();
          if (this.holdUpstreamMs > 0) setTimeout(() => upstream.destroy(), this.holdUpstreamMs);
          else upstream.destroy();
          return;
        }
        upstream.write(data);
      });
      upstream.on("data", (data) => {
        if (this.loseAnswers > 0) {
          this.loseAnswers--;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(data);
      });
      client.on("error", () => {});
      upstream.on("error", () => client.destroy());
      upstream.on("close", () => client.destroy());
      // A held upstream outlives its client (see holdUpstreamMs).
      client.on("close", () => {
        if (this.holdUpstreamMs === 0) upstream.destroy();
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
    return `http://127.0.0.1:${this.port}`;
  }

  stop(): void {
    this.server.close();
  }
}

interface Outcome {
  url: string;
  /** `Spool-Video-Id` of the creation's 201, when this run created the upload. */
  videoId?: string;
  error?: Error;
  lastResponse?: tus.HttpResponse;
}

/**
 * Runs one tus-js-client upload to completion or failure (no automatic retries). The key goes
 * with the creation (POST) only: the upload URL it returns is all the other requests carry.
 */
function runUpload(data: Buffer, options: tus.UploadOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    let videoId: string | undefined;
    const upload: tus.Upload = new tus.Upload(data, {
      retryDelays: [],
      onBeforeRequest: (req) => {
        if (req.getMethod() === "POST") for (const [name, value] of Object.entries(AUTH)) req.setHeader(name, value);
      },
      onAfterResponse: (req, res) => {
        if (req.getMethod() === "POST" && res.getStatus() === 201) videoId = res.getHeader("spool-video-id");
      },
      ...options,
      onError: (error) => resolve({ url: upload.url ?? "", videoId, error }),
      onSuccess: (payload) => resolve({ url: upload.url ?? "", videoId, lastResponse: payload.lastResponse }),
    });
    upload.start();
  });
}

/** Creates an upload with fetch (and the key); resolves with the 201, its upload URL and its video id. */
async function create(headers: Record<string, string>, s: TestSpool = spool): Promise<{ response: Response; uploadUrl: string; id: string }> {
  const response = await fetch(`${s.url}/api/uploads`, { method: "POST", headers: { ...CREATE, ...headers } });
  expect(response.status).toBe(201);
  const id = response.headers.get("spool-video-id")!;
  const uploadUrl = `${s.url}${response.headers.get("location")}`;
  expectUploadUrlFor(uploadUrl, id);
  return { response, uploadUrl, id };
}

/** HEAD on an upload URL (tus: how many bytes the server has). */
async function head(uploadUrl: string): Promise<Response> {
  return fetch(uploadUrl, { method: "HEAD", headers: TUS });
}

describe("a resumable upload", () => {
  test("cut off midway by a dropped connection, resumed with tus-js-client, stored byte for byte", async () => {
    const source = await makeLargeVideo(4);
    const data = Buffer.from(await Bun.file(source).arrayBuffer());
    const proxy = new FlakyProxy(spool.port);
    const base = await proxy.start();
    try {
      // One PATCH with the whole file; the connection dies after ~40% of it.
      proxy.cutAfter = Math.floor(data.length * 0.4);
      const cut = await runUpload(data, { endpoint: `${base}/api/uploads`, metadata: { filename: "holiday.mp4", filetype: "video/mp4", title: "Holiday" } });
      expect(cut.error?.message).toContain("failed to upload chunk at offset 0");
      const id = cut.videoId!;
      expectUploadUrlFor(cut.url, id);
      const uploadUrl = `${spool.url}/api/uploads/${uploadIdOf(cut.url)}`;

      // The server kept what arrived; the video exists, still uploading.
      const state = await head(uploadUrl);
      expect(state.status).toBe(200);
      const offset = Number(state.headers.get("upload-offset"));
      expect(offset).toBeGreaterThan(0);
      expect(offset).toBeLessThan(data.length);
      expect(state.headers.get("upload-length")).toBe(String(data.length));
      expect(state.headers.get("cache-control")).toBe("no-store");
      const during = (await (await fetch(`${spool.url}/api/videos/${id}`)).json()) as VideoJson;
      expect(during).toMatchObject({ status: "uploading", title: "Holiday", originalFilename: "holiday.mp4" });
      expect(uploadFiles(id)).toEqual([uploadIdOf(cut.url), `${uploadIdOf(cut.url)}.json`]);

      // A new client resumes from the server's offset, not from zero (with the URL alone, no key).
      let firstProgress = -1;
      const resumed = await runUpload(data, {
        endpoint: `${base}/api/uploads`,
        uploadUrl: cut.url,
        onProgress: (sent) => {
          if (firstProgress < 0) firstProgress = sent;
        },
      });
      expect(resumed.error).toBeUndefined();
      expect(resumed.lastResponse!.getStatus()).toBe(204);
      expect(resumed.lastResponse!.getHeader("spool-video-id")).toBe(id);
      expect(resumed.lastResponse!.getHeader("upload-offset")).toBe(String(data.length));
      expect(proxy.forwarded).toBeLessThan(data.length * 1.7); // the first 40% were not sent twice

      const video = await waitUntilSettled(spool.url, id);
      expect(video).toMatchObject({ status: "ready", title: "Holiday", container: "mp4", width: 640, height: 360, size: data.length });
      const stored = join(spool.dataDir, "videos", id, "source.mp4");
      expect(await sha256File(stored)).toBe(await sha256File(source));
      expect(Buffer.from(await Bun.file(stored).arrayBuffer()).equals(data)).toBe(true);
      expect(video.sha256).toBe(await sha256File(source));
      // The upload is over: its bytes left the store, and its URL says it is complete.
      expect(uploadFiles(id)).toEqual([`${uploadIdOf(uploadUrl)}.done`]);
      expect((await head(uploadUrl)).headers.get("upload-offset")).toBe(String(data.length));
    } finally {
      proxy.stop();
    }
  });

  test("in chunks, with Uppy's metadata keys, and a non-faststart file: ready and faststart", async () => {
    const source = await makeVideo({ seconds: 2, faststart: false });
    const data = Buffer.from(await Bun.file(source).arrayBuffer());
    const done = await runUpload(data, {
      endpoint: `${spool.url}/api/uploads`,
      chunkSize: 16 * 1024,
      metadata: { name: "from-uppy.mov", type: "video/quicktime", filetype: "video/quicktime", relativePath: "null" },
    });
    expect(done.error).toBeUndefined();
    expectUploadUrlFor(done.url, done.videoId!);
    expect(done.lastResponse!.getHeader("spool-video-id")).toBe(done.videoId);
    const video = await waitUntilSettled(spool.url, done.videoId!);
    // The bytes are MP4 whatever the metadata said; the title comes from the file name.
    expect(video).toMatchObject({ status: "ready", title: "from-uppy", originalFilename: "from-uppy.mov", container: "mp4", contentType: "video/mp4" });
    const boxes = await topLevelBoxes(join(spool.dataDir, "videos", video.id, "source.mp4"));
    expect(boxes.indexOf("moov")).toBeLessThan(boxes.indexOf("mdat"));
  });

  test("creation-with-upload: the whole file in the creating POST", async () => {
    const source = await makeVideo({ seconds: 1, container: "webm" });
    const data = Buffer.from(await Bun.file(source).arrayBuffer());
    const done = await runUpload(data, { endpoint: `${spool.url}/api/uploads`, uploadDataDuringCreation: true, metadata: { filename: "one-shot.webm" } });
    expect(done.error).toBeUndefined();
    expect(done.lastResponse!.getStatus()).toBe(201);
    expectUploadUrlFor(done.url, done.videoId!);
    const video = await waitUntilSettled(spool.url, done.videoId!);
    expect(video).toMatchObject({ status: "ready", container: "webm", size: data.length });
  });

  test("survives a server restart", async () => {
    const dataDir = join(scratch, "restart");
    const source = await makeLargeVideo(4);
    const data = Buffer.from(await Bun.file(source).arrayBuffer());
    const first = await startTestSpool({ dataDir, seedDemo: false, maxUploadBytes: LIMIT, jobKinds: NO_HLS });
    const proxy = new FlakyProxy(first.port);
    const base = await proxy.start();
    proxy.cutAfter = Math.floor(data.length / 2);
    const cut = await runUpload(data, { endpoint: `${base}/api/uploads`, metadata: { filename: "restart.mp4" } });
    proxy.stop();
    expect(cut.error).toBeDefined();
    const id = cut.videoId!;
    expectUploadUrlFor(cut.url, id);
    const uploadId = uploadIdOf(cut.url);
    const offset = (await head(`${first.url}/api/uploads/${uploadId}`)).headers.get("upload-offset");
    await first.stop();

    const second = await startTestSpool({ dataDir, seedDemo: false, maxUploadBytes: LIMIT, jobKinds: NO_HLS });
    try {
      // Not marked failed like a cut-off multipart upload: it can still be resumed.
      expect(((await (await fetch(`${second.url}/api/videos/${id}`)).json()) as VideoJson).status).toBe("uploading");
      expect((await head(`${second.url}/api/uploads/${uploadId}`)).headers.get("upload-offset")).toBe(offset);
      const resumed = await runUpload(data, { endpoint: `${second.url}/api/uploads`, uploadUrl: `${second.url}/api/uploads/${uploadId}` });
      expect(resumed.error).toBeUndefined();
      const video = await waitUntilSettled(second.url, id);
      expect(video.status).toBe("ready");
      expect(await sha256File(join(dataDir, "videos", id, "source.mp4"))).toBe(await sha256File(source));
    } finally {
      await second.stop();
    }
  });
});

describe("an upload whose last byte was stored when the server stopped", () => {
  test("is handed to processing at the next start (its client, told the upload is complete, sends nothing more)", async () => {
    const dataDir = join(scratch, "completed");
    const source = await makeLargeVideo(2);
    const data = Buffer.from(await Bun.file(source).arrayBuffer());
    const first = await startTestSpool({ dataDir, seedDemo: false, maxUploadBytes: LIMIT, jobKinds: NO_HLS });
    const created = await fetch(`${first.url}/api/uploads`, { method: "POST", headers: { ...CREATE, "upload-length": String(data.length), "upload-metadata": `filename ${b64("done.mp4")}` } });
    expect(created.status).toBe(201);
    const uploadId = uploadIdOf(created.headers.get("location")!);
    const id = videoIdOf(created.headers.get("location")!);
    // Half the bytes through tus, and the rest as the store would have written them before a
    // crash took the server down between the write and the hand-over to ingest.
    const half = Math.floor(data.length / 2);
    const patched = await fetch(`${first.url}/api/uploads/${uploadId}`, { method: "PATCH", headers: { ...TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream" }, body: data.subarray(0, half) });
    expect(patched.status).toBe(204);
    await first.stop();
    await appendFile(join(dataDir, "uploads", uploadId), data.subarray(half));

    // A start without ffmpeg hands nothing over, and drops nothing.
    const blind = await startTestSpool({ dataDir, seedDemo: false, maxUploadBytes: LIMIT, jobKinds: NO_HLS, ffmpegPath: "/nonexistent/ffmpeg", ffprobePath: "/nonexistent/ffprobe" });
    try {
      expect((await blind.ctx.library.get(id))?.status).toBe("uploading");
      expect(filesUnder(join(dataDir, "uploads")).filter((name) => name.startsWith(id)).sort()).toEqual([uploadId, `${uploadId}.json`].sort());
    } finally {
      await blind.stop();
    }

    const second = await startTestSpool({ dataDir, seedDemo: false, maxUploadBytes: LIMIT, jobKinds: NO_HLS });
    try {
      const video = await waitUntilSettled(second.url, id);
      expect(video.status).toBe("ready");
      expect(await sha256File(join(dataDir, "videos", id, "source.mp4"))).toBe(await sha256File(source));
      // The upload left the tus store with its hand-over; its URL says it is complete.
      expect(filesUnder(join(dataDir, "uploads")).filter((name) => name.startsWith(id))).toEqual([`${uploadId}.done`]);
      const complete = await head(`${second.url}/api/uploads/${uploadId}`);
      expect([complete.status, complete.headers.get("upload-offset")]).toEqual([200, String(data.length)]);
    } finally {
      await second.stop();
    }
  });
});

describe("what is not media is refused when the last byte arrives", () => {
  test("415 JSON to the final PATCH; the upload, its video and its bytes are gone", async () => {
    const data = Buffer.from("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n");
    const result = await runUpload(data, { endpoint: `${spool.url}/api/uploads`, metadata: { filename: "movie.mp4" } });
    expect(result.error).toBeDefined();
    const original = (result.error as tus.DetailedError).originalResponse!;
    expect(original.getStatus()).toBe(415);
    expect(original.getHeader("content-type")).toBe("application/json; charset=utf-8");
    const body = JSON.parse(original.getBody()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("unsupported_media_type");
    expect(body.error.message).toContain("HLS playlist");
    const id = result.videoId!;
    expectUploadUrlFor(result.url, id);
    await expectError(await fetch(`${spool.url}/api/videos/${id}`), 404, "not_found");
    expect(uploadFiles(id)).toEqual([]);
    expect(filesUnder(join(spool.dataDir, "videos", id))).toEqual([]);
    expect(filesUnder(join(spool.dataDir, "tmp"))).toEqual([]);
  });
});

describe("the protocol", () => {
  test("OPTIONS: versions, extensions and the size limit", async () => {
    const response = await fetch(`${spool.url}/api/uploads`, { method: "OPTIONS" });
    expect(response.status).toBe(204);
    expect(response.headers.get("tus-version")).toBe("1.0.0");
    expect(response.headers.get("tus-extension")!.split(",").sort()).toEqual(["creation", "creation-defer-length", "creation-with-upload", "expiration", "termination"]);
    expect(response.headers.get("tus-max-size")).toBe(String(LIMIT));
  });

  test("a preflight invites a page to send tus's headers, not the forwarding ones (trusted only from a proxy)", async () => {
    const response = await fetch(`${spool.url}/api/uploads`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "tus-resumable, upload-length, x-forwarded-host" },
    });
    expect(response.status).toBe(204);
    const allowed = response.headers.get("access-control-allow-headers")!.toLowerCase().split(/,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(["authorization", "tus-resumable", "upload-length", "upload-metadata", "upload-offset"]));
    expect(allowed.filter((h) => h.startsWith("x-forwarded") || h === "forwarded")).toEqual([]);
  });

  test("creation: 201, a relative Location, the video id, an expiry, and an `uploading` video", async () => {
    const response = await fetch(`${spool.url}/api/uploads`, {
      method: "POST",
      headers: { ...CREATE, "upload-length": "1000", "upload-metadata": `filename ${b64("a.mp4")},title ${b64("Été")}` },
    });
    expect(response.status).toBe(201);
    const id = response.headers.get("spool-video-id")!;
    const location = response.headers.get("location")!;
    // Relative, and the upload id is the video id plus a secret: `<video id>.<secret>`.
    expect(location).toStartWith(`/api/uploads/${id}.`);
    expectUploadUrlFor(location, id);
    expect(response.headers.get("tus-resumable")).toBe("1.0.0");
    const expires = Date.parse(response.headers.get("upload-expires")!);
    expect(expires).toBeGreaterThan(Date.now() + 23 * 3600_000);
    expect(response.headers.get("access-control-expose-headers")).toContain("Spool-Video-Id");
    const video = (await (await fetch(`${spool.url}/api/videos/${id}`)).json()) as VideoJson;
    expect(video).toMatchObject({ status: "uploading", title: "Été", originalFilename: "a.mp4", size: 0 });
    expect((await fetch(`${spool.url}${location}`, { method: "DELETE", headers: TUS })).status).toBe(204);
  });

  test("the file name a client sends is kept without line breaks, controls or bidi overrides, and at most 255 characters (the title made from it is cut as titles are)", async () => {
    const name = `evil\r\nname\u202Egpj.exe${"é".repeat(1000)}.mp4`;
    const response = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...CREATE, "upload-length": "1000", "upload-metadata": `filename ${b64(name)}` } });
    expect(response.status).toBe(201);
    const video = (await (await fetch(`${spool.url}/api/videos/${response.headers.get("spool-video-id")}`)).json()) as VideoJson;
    expect(video.originalFilename).toBe(`evil__namegpj.exe${"é".repeat(255 - 17)}`);
    expect([...video.originalFilename]).toHaveLength(255);
    expect((await fetch(`${spool.url}${response.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);
  });

  test("creation with a title over 500 characters: 400 in the JSON error shape, no video", async () => {
    const before = (await listAll(spool.url)).length;
    const response = await fetch(`${spool.url}/api/uploads`, {
      method: "POST",
      headers: { ...CREATE, "upload-length": "1000", "upload-metadata": `filename ${b64("a.mp4")},title ${b64("t".repeat(501))}` },
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string; message: string } }).error).toEqual({ code: "bad_request", message: "title: at most 500 characters" });
    expect((await listAll(spool.url)).length).toBe(before);
  });

  test("termination: DELETE removes the bytes and the video they were for", async () => {
    const { uploadUrl, id } = await create({ "upload-length": "100" });
    const patch = await fetch(uploadUrl, {
      method: "PATCH",
      headers: { ...TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream" },
      body: new Uint8Array(40),
    });
    expect(patch.status).toBe(204);
    expect(patch.headers.get("upload-offset")).toBe("40");
    const deleted = await fetch(uploadUrl, { method: "DELETE", headers: TUS });
    expect(deleted.status).toBe(204);
    expect((await head(uploadUrl)).status).toBe(404);
    await expectError(await fetch(`${spool.url}/api/videos/${id}`), 404, "not_found");
    expect(uploadFiles(id)).toEqual([]);
  });

  test("deleting the `uploading` video deletes the upload too", async () => {
    const { uploadUrl, id } = await create({ "upload-length": "100" });
    expect(uploadFiles(id)).toEqual([uploadIdOf(uploadUrl), `${uploadIdOf(uploadUrl)}.json`]);
    expect((await fetch(`${spool.url}/api/videos/${id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
    expect(uploadFiles(id)).toEqual([]);
    expect((await head(uploadUrl)).status).toBe(404);
  });

  test("errors are Spool's JSON, with the tus headers kept", async () => {
    const noVersion = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, "upload-length": "10" } });
    expect((await expectError(noVersion, 412, "tus_version_required")).error.message).toBe("Tus-Resumable Required");
    expect(noVersion.headers.get("tus-resumable")).toBe("1.0.0");

    const before = filesUnder(uploadsDir());
    const tooBig = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...CREATE, "upload-length": String(LIMIT + 1) } });
    await expectError(tooBig, 413, "payload_too_large");
    expect(filesUnder(uploadsDir())).toEqual(before);

    await expectError(await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: CREATE }), 400, "bad_request");

    const { uploadUrl, id } = await create({ "upload-length": "100" });
    const patch = (offset: string, body = new Uint8Array(10)) =>
      fetch(uploadUrl, { method: "PATCH", headers: { ...TUS, "upload-offset": offset, "content-type": "application/offset+octet-stream" }, body });
    await expectError(await patch("5"), 409, "offset_conflict");
    await expectError(await patch("0", new Uint8Array(101)), 413, "payload_too_large");
    await expectError(
      await fetch(uploadUrl, { method: "PATCH", headers: { ...TUS, "content-type": "application/offset+octet-stream" }, body: "x" }),
      400,
      "bad_request",
    );
    // Upload ids that are not this upload's reach nothing: a made-up one, the bare video id, a malformed one.
    for (const other of ["AAAAAAAAAAAAAAAAAAAAAA", id, "bad!id"]) {
      await expectError(await fetch(`${spool.url}/api/uploads/${other}`, { method: "PATCH", headers: { ...TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream" }, body: "x" }), 404, "not_found");
    }
    // tus 1.0.0: a version the server does not speak is 412 with Tus-Version; a PATCH of another body type is 415.
    for (const version of [undefined, "0.2.2", "2.0.0"]) {
      const response = await fetch(uploadUrl, { method: "HEAD", headers: version ? { "tus-resumable": version } : {} });
      expect({ version, status: response.status, supported: response.headers.get("tus-version") }).toEqual({ version, status: 412, supported: "1.0.0" });
    }
    const unsupported = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "0.2.2", "upload-length": "10" } });
    await expectError(unsupported, 412, "tus_version_required");
    expect(unsupported.headers.get("tus-version")).toBe("1.0.0");
    for (const type of ["application/octet-stream", "text/plain", undefined]) {
      const response = await fetch(uploadUrl, { method: "PATCH", headers: { ...TUS, "upload-offset": "0", ...(type ? { "content-type": type } : {}) }, body: new Uint8Array(10) });
      expect({ type, status: response.status }).toEqual({ type, status: 415 });
      await expectError(response, 415, "unsupported_media_type");
    }
    // Forwarding headers of a proxy chain (a list, upper case) are no reason to refuse: Locations are relative.
    for (const proto of ["https, http", "HTTPS"]) {
      const forwarded = { "x-forwarded-proto": proto, "x-forwarded-host": "a.example, b.example" };
      expect((await fetch(uploadUrl, { method: "HEAD", headers: { ...TUS, ...forwarded } })).status).toBe(200);
      const created = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...CREATE, ...forwarded, "upload-length": "10" } });
      expect(created.status).toBe(201);
      expect(created.headers.get("location")).toStartWith("/api/uploads/");
      expect((await fetch(`${spool.url}${created.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);
    }
    // Something that is not the shape of an upload URL is "no such upload" before any header is read.
    await expectError(await fetch(`${spool.url}/api/uploads/bad!id`, { method: "PATCH", headers: TUS }), 404, "not_found");
    expect((await fetch(`${spool.url}/api/uploads/${id}`, { method: "HEAD", headers: TUS })).status).toBe(404);
    expect((await head(uploadUrl)).headers.get("upload-offset")).toBe("0");
    expect((await fetch(uploadUrl, { method: "DELETE", headers: TUS })).status).toBe(204);
  });
});

describe("a completed upload", () => {
  const octets = { ...TUS, "content-type": "application/offset+octet-stream" };
  /** Ingest jobs of a video (a hand-over queues exactly one). */
  const ingestJobs = async (id: string) => (await spool.ctx.jobs.forVideo(id, "ingest")).length;
  const tmpFiles = () => filesUnder(join(spool.dataDir, "tmp"));

  test("the final PATCH sent again, during its hand-over and after it: one ingest, 204 each time, nothing left in tmp/; HEAD says complete", async () => {
    const data = Buffer.from(await Bun.file(await makeVideo({ seconds: 2 })).arrayBuffer());
    const size = String(data.length);
    const { uploadUrl, id } = await create({ "upload-length": size });
    const final = fetch(uploadUrl, { method: "PATCH", headers: { ...octets, "upload-offset": "0" }, body: data });
    // Once every byte is stored, the hand-over (ffprobe) runs; empty PATCHes at the final offset
    // arrive during it (a client that lost the first answer), then after it.
    while ((await head(uploadUrl)).headers.get("upload-offset") !== size) await Bun.sleep(1);
    const again = () => fetch(uploadUrl, { method: "PATCH", headers: { ...octets, "upload-offset": size } });
    const during = await Promise.all([again(), again(), again()]);
    expect((await final).status).toBe(204);
    const after = await Promise.all([again(), again()]);
    for (const response of [...during, ...after]) {
      expect(response.status).toBe(204);
      expect(response.headers.get("upload-offset")).toBe(size);
      expect(response.headers.get("spool-video-id")).toBe(id);
    }
    expect(await ingestJobs(id)).toBe(1);
    expect(await waitUntilSettled(spool.url, id)).toMatchObject({ status: "ready", size: data.length });
    expect(tmpFiles()).toEqual([]);
    // tus 1.0.0: HEAD answers the offset of a completed upload too (a 404 made clients upload it again).
    const done = await head(uploadUrl);
    expect(done.status).toBe(200);
    expect([done.headers.get("upload-offset"), done.headers.get("upload-length"), done.headers.get("cache-control"), done.headers.get("tus-resumable")]).toEqual([size, size, "no-store", "1.0.0"]);
    await expectError(await fetch(uploadUrl, { method: "PATCH", headers: { ...octets, "upload-offset": "0" }, body: "x" }), 409, "offset_conflict");
    // Only the upload's own URL says so: the bytes are gone from the store.
    expect(uploadFiles(id)).toEqual([`${uploadIdOf(uploadUrl)}.done`]);
    expect((await fetch(`${spool.url}/api/uploads/${id}.${"A".repeat(32)}`, { method: "HEAD", headers: TUS })).status).toBe(404);
    // Deleting the video forgets it.
    expect((await fetch(`${spool.url}/api/videos/${id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
    expect(uploadFiles(id)).toEqual([]);
    expect((await head(uploadUrl)).status).toBe(404);
  });

  test("a chunked PATCH running past Upload-Length: 413 for it, and the upload it completed is handed over", async () => {
    const data = Buffer.from(await Bun.file(await makeVideo({ seconds: 1 })).arrayBuffer());
    const { uploadUrl, id } = await create({ "upload-length": String(data.length) });
    // The declared bytes, then (once they are stored) more: @tus/server keeps the first and refuses the rest.
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        pulls++;
        if (pulls === 1) return controller.enqueue(new Uint8Array(data));
        if (pulls > 2) return controller.close();
        await Bun.sleep(300);
        controller.enqueue(new TextEncoder().encode("trailing bytes the upload did not declare"));
      },
    });
    const over = await fetch(uploadUrl, { method: "PATCH", headers: { ...octets, "upload-offset": "0" }, body, duplex: "half" } as RequestInit);
    await expectError(over, 413, "payload_too_large");
    // A client resuming hears the upload is complete and sends nothing more: it must not stay `uploading`.
    expect(await waitUntilSettled(spool.url, id)).toMatchObject({ status: "ready", size: data.length });
    expect(await ingestJobs(id)).toBe(1);
    expect((await head(uploadUrl)).headers.get("upload-offset")).toBe(String(data.length));
  });
});

/** A direct upload URL (issued with the key), for a page without it. */
async function issueDirect(): Promise<{ uploadUrl: string; videoId: string }> {
  const issued = await fetch(`${spool.url}/api/uploads/direct`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: "{}" });
  expect(issued.status).toBe(201);
  return (await issued.json()) as { uploadUrl: string; videoId: string };
}

describe("a direct upload URL whose creation fails", () => {
  test("after making its upload (a body over its length, a client that hangs up): the upload is kept with what it stored, and the repeated creation gets it", async () => {
    // A body longer than its Upload-Length says: refused before a byte is stored, as a PATCH's is.
    const over = await issueDirect();
    const refused = await fetch(spool.url + over.uploadUrl, { method: "POST", headers: { ...TUS, "content-type": "application/offset+octet-stream", "upload-length": "100" }, body: new Uint8Array(1000) });
    await expectError(refused, 413, "payload_too_large");
    expect(await spool.ctx.library.get(over.videoId)).toMatchObject({ status: "uploading" });
    const empty = await fetch(spool.url + over.uploadUrl, { method: "POST", headers: { ...TUS, "upload-length": "100" } });
    expect([empty.status, empty.headers.get("spool-video-id"), empty.headers.get("upload-offset")]).toEqual([201, over.videoId, "0"]);
    expect((await fetch(`${spool.url}${empty.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);

    const cut = await issueDirect();
    await withCapturedLogs(async (lines) => {
      const controller = new AbortController();
      let pulls = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(stream) {
          if (++pulls > 1) {
            // The client goes away mid-body.
            await Bun.sleep(200);
            controller.abort();
            return;
          }
          stream.enqueue(new Uint8Array(1000));
        },
      });
      const request = fetch(spool.url + cut.uploadUrl, { method: "POST", headers: { ...TUS, "content-type": "application/offset+octet-stream", "upload-length": "100000" }, body, duplex: "half", signal: controller.signal } as RequestInit);
      await expect(request).rejects.toThrow();
      const logged = () => lines().filter((l) => l.route === "/api/uploads/direct/:secret");
      for (let i = 0; i < 250 && logged().length === 0; i++) await Bun.sleep(20);
      // Logged as what it is (nginx's 499), not as a fault of the server's.
      expect(logged().map((l) => [l.msg, l.status])).toEqual([["request", 499]]);
    });
    expect(await spool.ctx.library.get(cut.videoId)).toMatchObject({ status: "uploading" });
    const retried = await fetch(spool.url + cut.uploadUrl, { method: "POST", headers: { ...TUS, "upload-length": "100000" } });
    expect([retried.status, retried.headers.get("spool-video-id"), retried.headers.get("upload-offset")]).toEqual([201, cut.videoId, "1000"]);
    // Used now: once (another upload than the one it made gets nothing).
    await expectError(await fetch(spool.url + cut.uploadUrl, { method: "POST", headers: { ...TUS, "upload-length": "101" } }), 410, "upload_url_used");
    expect((await fetch(`${spool.url}${retried.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);
  });
});

describe("a direct upload creation whose answer is lost", () => {
  test("tus-js-client's retried creation gets the upload the first one made: one video, stored byte for byte", async () => {
    const source = await makeVideo({ seconds: 1 });
    const data = Buffer.from(await Bun.file(source).arrayBuffer());
    const { uploadUrl, videoId } = await issueDirect();
    const before = (await listAll(spool.url)).length;
    const proxy = new FlakyProxy(spool.port);
    const base = await proxy.start();
    try {
      // The creation is served, and its 201 never reaches the page.
      proxy.loseAnswers = 1;
      const methods: string[] = [];
      const done = await runUpload(data, { endpoint: base + uploadUrl, retryDelays: [0], onBeforeRequest: (req) => void methods.push(req.getMethod()) });
      expect(done.error).toBeUndefined();
      expect(methods).toEqual(["POST", "POST", "PATCH"]);
      expect(done.videoId).toBe(videoId);
      expect(await waitUntilSettled(spool.url, videoId)).toMatchObject({ status: "ready", size: data.length });
      expect(await sha256File(join(spool.dataDir, "videos", videoId, "source.mp4"))).toBe(await sha256File(source));
      expect((await listAll(spool.url)).length).toBe(before + 1);

      // Asked once more after it completed: the same upload, complete.
      const late = await fetch(spool.url + uploadUrl, { method: "POST", headers: { ...TUS, "upload-length": String(data.length) } });
      expect(late.status).toBe(201);
      expect(`${base}${late.headers.get("location")}`).toBe(done.url);
      expect(late.headers.get("upload-offset")).toBe(String(data.length));
      expect((await listAll(spool.url)).length).toBe(before + 1);
    } finally {
      proxy.stop();
    }
  });

  test("a repeated creation: the same Location at the upload's offset now, with tus's CORS headers, its body not taken; another length, or an upload that is gone, 410", async () => {
    const { uploadUrl, videoId } = await issueDirect();
    const creation = { ...TUS, origin: "https://app.example", "upload-length": "1000", "content-type": "application/offset+octet-stream" };
    const first = await fetch(spool.url + uploadUrl, { method: "POST", headers: creation, body: new Uint8Array(400).fill(1) });
    expect(first.status).toBe(201);
    expect(first.headers.get("upload-offset")).toBe("400");
    const location = first.headers.get("location")!;

    const again = await fetch(spool.url + uploadUrl, { method: "POST", headers: creation, body: new Uint8Array(1000).fill(2) });
    expect(again.status).toBe(201);
    const seen = (r: Response) => Object.fromEntries(["location", "spool-video-id", "upload-offset", "upload-expires", "tus-resumable", "access-control-allow-origin", "access-control-expose-headers"].map((h) => [h, r.headers.get(h)]));
    expect(first.headers.get("upload-expires")).toBeTruthy();
    expect(seen(again)).toEqual({ ...seen(first), "spool-video-id": videoId });
    expect(again.headers.get("upload-length")).toBeNull();
    const state = await head(spool.url + location);
    expect(state.headers.get("upload-offset")).toBe("400");
    expect(Buffer.from(await Bun.file(join(uploadsDir(), uploadIdOf(location))).arrayBuffer()).equals(Buffer.alloc(400, 1))).toBe(true);

    // Not the same file: another length, or the same length with other metadata.
    await expectError(await fetch(spool.url + uploadUrl, { method: "POST", headers: { ...creation, "upload-length": "999" } }), 410, "upload_url_used");
    await expectError(await fetch(spool.url + uploadUrl, { method: "POST", headers: { ...creation, "upload-metadata": `filename ${b64("other.mp4")}` } }), 410, "upload_url_used");
    expect((await fetch(spool.url + location, { method: "DELETE", headers: TUS })).status).toBe(204);
    // Gone (its creation settled, so nothing is still coming): 410 at once.
    await expectError(await fetch(spool.url + uploadUrl, { method: "POST", headers: creation }), 410, "upload_url_used");
    expect(await spool.ctx.library.get(videoId)).toBeUndefined();
    expect(uploadFiles(videoId)).toEqual([]);
  });

  test("tus-js-client's creation cut mid-body and retried at once, while the server still waits for the rest: the retry gets the upload that creation made, at the offset it stored, and sends the rest", async () => {
    const source = await makeVideo({ seconds: 1 });
    const data = Buffer.from(await Bun.file(source).arrayBuffer());
    const { uploadUrl, videoId } = await issueDirect();
    const proxy = new FlakyProxy(spool.port);
    const base = await proxy.start();
    try {
      proxy.cutAfter = Math.floor(data.length / 2);
      proxy.holdUpstreamMs = 500;
      const answers: string[] = [];
      let posts = 0;
      const done = await runUpload(data, {
        endpoint: base + uploadUrl,
        uploadDataDuringCreation: true,
        retryDelays: [0, 0],
        // The retry comes once the server has begun the first creation (the cut can come before
        // that, the half body still in socket buffers: the retry would then simply create).
        onBeforeRequest: async (req) => {
          if (req.getMethod() === "POST" && ++posts > 1) for (let i = 0; i < 250 && !(await directRow(videoId)).usedAt; i++) await Bun.sleep(10);
        },
        onAfterResponse: (req, res) => void answers.push(`${req.getMethod()} ${res.getStatus()}`),
      });
      expect({ error: done.error?.message, answers }).toEqual({ error: undefined, answers: ["POST 201", "PATCH 204"] });
      expect(await waitUntilSettled(spool.url, videoId)).toMatchObject({ status: "ready", size: data.length });
      expect(await sha256File(join(spool.dataDir, "videos", videoId, "source.mp4"))).toBe(await sha256File(source));
    } finally {
      proxy.stop();
    }
  });

  test("a creation whose video the database refused gives its URL back: the retry makes the upload", async () => {
    const { uploadUrl, videoId } = await issueDirect();
    const library = spool.ctx.library;
    const begin = library.begin.bind(library);
    // The database refuses the one write after the URL was used up (a busy SQLite, a PostgreSQL outage).
    library.begin = async () => {
      library.begin = begin;
      throw Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" });
    };
    const creation = { ...TUS, "upload-length": "100" };
    const refused = await fetch(spool.url + uploadUrl, { method: "POST", headers: creation });
    expect(refused.status).toBe(503);
    expect(await spool.ctx.library.get(videoId)).toBeUndefined();
    const retried = await fetch(spool.url + uploadUrl, { method: "POST", headers: creation });
    expect(retried.status).toBe(201);
    expect(retried.headers.get("spool-video-id")).toBe(videoId);
    expect((await fetch(`${spool.url}${retried.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);
  });
});

/** The direct_uploads row of a video's direct upload URL, as the database has it. */
async function directRow(videoId: string) {
  const { db, tables } = spool.ctx.db;
  const [row] = await db.select().from(tables.directUploads).where(eq(tables.directUploads.videoId, videoId));
  return row!;
}

/** Writes a direct upload URL's row as a creation that used it (and settled, or not) would have left it. */
async function setDirectRow(videoId: string, fields: { usedAt?: Date; settledAt?: Date | null }): Promise<void> {
  const { db, tables } = spool.ctx.db;
  await db.update(tables.directUploads).set(fields).where(eq(tables.directUploads.videoId, videoId));
}

describe("a repeated direct upload creation, decided by the URL's settled marker", () => {
  /** Another server on the same DATA_DIR and database (another process, as far as either can tell). */
  let other: TestSpool;
  beforeAll(async () => {
    other = await startTestSpool({ dataDir: spool.dataDir, seedDemo: false, maxUploadBytes: LIMIT, jobKinds: [] });
  });
  afterAll(async () => {
    await other?.stop();
  });

  test("through another server while the creation has not settled (its database takes over 2 s to register the video): 423 with Retry-After, Tus-Resumable and CORS; once it settled, its 201", async () => {
    const { uploadUrl, videoId } = await issueDirect();
    const library = spool.ctx.library;
    const begin = library.begin.bind(library);
    const slow = Promise.withResolvers<void>();
    library.begin = async (...args: Parameters<typeof begin>) => {
      library.begin = begin;
      await slow.promise;
      return begin(...args);
    };
    try {
      const creation = { ...TUS, origin: "https://app.example", "upload-length": "100" };
      const first = fetch(spool.url + uploadUrl, { method: "POST", headers: creation });
      for (let i = 0; i < 250 && !(await directRow(videoId)).usedAt; i++) await Bun.sleep(20);
      await Bun.sleep(2_500);
      const early = await fetch(other.url + uploadUrl, { method: "POST", headers: creation });
      expect([early.status, early.headers.get("retry-after"), early.headers.get("tus-resumable"), early.headers.get("access-control-allow-origin")]).toEqual([423, "1", "1.0.0", "*"]);
      await expectError(early, 423, "upload_creation_in_progress");
      slow.resolve();
      const made = await first;
      expect(made.status).toBe(201);
      const again = await fetch(other.url + uploadUrl, { method: "POST", headers: creation });
      expect([again.status, again.headers.get("location")]).toEqual([201, made.headers.get("location")]);
      expect(await spool.ctx.library.get(videoId)).toMatchObject({ status: "uploading" });
      expect((await fetch(`${spool.url}${made.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);
    } finally {
      library.begin = begin;
      slow.resolve();
    }
  });

  test("a creation that fails once its upload is made (its client hangs up mid-body) never leaves a repeat elsewhere with a Location that 404s", async () => {
    const { uploadUrl, videoId } = await issueDirect();
    const library = spool.ctx.library;
    const remove = library.remove.bind(library);
    // A rollback, were there one, would take a second (a slow database): a repeat meanwhile must
    // not be told of an upload it then deletes.
    library.remove = async (...args: Parameters<typeof remove>) => {
      await Bun.sleep(1_000);
      return remove(...args);
    };
    try {
      await withCapturedLogs(async (lines) => {
        const controller = new AbortController();
        let pulls = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(stream) {
            if (++pulls === 1) return stream.enqueue(new Uint8Array(1000));
            await new Promise((resolve) => controller.signal.addEventListener("abort", resolve));
          },
        });
        const creation = { ...TUS, "content-type": "application/offset+octet-stream", "upload-length": "100000" };
        const request = fetch(spool.url + uploadUrl, { method: "POST", headers: creation, body, duplex: "half", signal: controller.signal } as RequestInit);
        // The upload is made and holds the first bytes.
        const stored = () => uploadFiles(videoId).filter((f) => !f.endsWith(".json")).map((f) => Bun.file(join(uploadsDir(), f)).size);
        for (let i = 0; i < 250 && stored()[0] !== 1000; i++) await Bun.sleep(20);
        expect(stored()).toEqual([1000]);
        controller.abort();
        await expect(request).rejects.toThrow();
        const repeat = await fetch(other.url + uploadUrl, { method: "POST", headers: { ...TUS, "upload-length": "100000" } });
        // The creation has answered, after whatever it does when it fails.
        for (let i = 0; i < 250 && !lines().some((l) => l.route === "/api/uploads/direct/:secret" && l.status === 499); i++) await Bun.sleep(20);
        expect(repeat.status).toBe(201);
        const state = await head(spool.url + repeat.headers.get("location"));
        expect([state.status, state.headers.get("upload-offset")]).toEqual([200, "1000"]);
        library.remove = remove;
        expect((await fetch(`${spool.url}${repeat.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);
      });
    } finally {
      library.remove = remove;
    }
  });

  test("a URL used up over 2 minutes ago by a creation that never settled (its process died): with no upload, the repeat creates it; with one, the repeat settles it and gets its Location; less long ago, 423", async () => {
    const { uploadUrl, videoId } = await issueDirect();
    const creation = { ...TUS, "upload-length": "100" };
    const post = () => fetch(other.url + uploadUrl, { method: "POST", headers: creation });
    // Used up a minute ago and nothing made: its creation may still be alive.
    await setDirectRow(videoId, { usedAt: new Date(Date.now() - 60_000), settledAt: null });
    await expectError(await post(), 423, "upload_creation_in_progress");
    await setDirectRow(videoId, { usedAt: new Date(Date.now() - 3 * 60_000) });
    const made = await post();
    expect([made.status, made.headers.get("spool-video-id")]).toEqual([201, videoId]);
    expect(await spool.ctx.library.get(videoId)).toMatchObject({ status: "uploading" });
    expect(uploadFiles(videoId)).toHaveLength(2);
    expect((await directRow(videoId)).settledAt).toBeInstanceOf(Date);

    // The upload made, its creator died before settling: not told while it might still be rolled back.
    await setDirectRow(videoId, { usedAt: new Date(Date.now() - 60_000), settledAt: null });
    await expectError(await post(), 423, "upload_creation_in_progress");
    await setDirectRow(videoId, { usedAt: new Date(Date.now() - 3 * 60_000) });
    const found = await post();
    expect([found.status, found.headers.get("location"), found.headers.get("upload-offset")]).toEqual([201, made.headers.get("location"), "0"]);
    expect((await directRow(videoId)).settledAt).toBeInstanceOf(Date);
    expect(uploadFiles(videoId)).toHaveLength(2);
    expect((await fetch(`${spool.url}${made.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);
    await expectError(await post(), 410, "upload_url_used");
  });
  test("a creation that stalled past 2 minutes and then fails renews its claim before undoing its upload: a repeat meanwhile is told to wait, never given a Location the undoing deletes", async () => {
    const { uploadUrl, videoId } = await issueDirect();
    const directs = spool.ctx.uploads.directUploads;
    const settle = directs.settle.bind(directs);
    const { db, tables } = spool.ctx.db;
    // The creation's own settle fails after it stalled for 3 minutes (its claim, and the row, that old).
    directs.settle = async (row, usedAt) => {
      directs.settle = settle;
      usedAt.setTime(usedAt.getTime() - 3 * 60_000);
      await db.update(tables.directUploads).set({ usedAt }).where(eq(tables.directUploads.videoId, videoId));
      throw new Error("the settle write failed");
    };
    const library = spool.ctx.library;
    const remove = library.remove.bind(library);
    const undoing = Promise.withResolvers<void>();
    const resume = Promise.withResolvers<void>();
    library.remove = async (...args: Parameters<typeof remove>) => {
      library.remove = remove;
      undoing.resolve();
      await resume.promise;
      return remove(...args);
    };
    try {
      const first = fetch(spool.url + uploadUrl, { method: "POST", headers: { ...TUS, "upload-length": "100" } });
      await undoing.promise;
      // The creation is undoing its upload: a repeat elsewhere must not be handed that upload.
      const during = await fetch(other.url + uploadUrl, { method: "POST", headers: { ...TUS, "upload-length": "100" } });
      resume.resolve();
      expect((await first).status).toBeGreaterThanOrEqual(500);
      if (during.status === 201) expect((await head(spool.url + during.headers.get("location"))).status).toBe(200);
      else await expectError(during, 423, "upload_creation_in_progress");
      // Undone, the URL works again.
      for (let i = 0; i < 250 && (await directRow(videoId)).usedAt !== null; i++) await Bun.sleep(20);
      const retried = await fetch(other.url + uploadUrl, { method: "POST", headers: { ...TUS, "upload-length": "100" } });
      expect(retried.status).toBe(201);
      expect((await head(spool.url + retried.headers.get("location"))).status).toBe(200);
      expect((await fetch(`${spool.url}${retried.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);
    } finally {
      directs.settle = settle;
      library.remove = remove;
      resume.resolve();
    }
  });

  test("a creation that registered its video and then died before making its upload leaves no video in the way: the repeat after 2 minutes creates the upload (not a 500 for ever)", async () => {
    const { uploadUrl, videoId } = await issueDirect();
    // What a creation leaves when its process dies between registering the video and making the upload.
    await spool.ctx.library.begin({ id: videoId, originalFilename: "upload" });
    await setDirectRow(videoId, { usedAt: new Date(Date.now() - 3 * 60_000), settledAt: null });
    const made = await fetch(other.url + uploadUrl, { method: "POST", headers: { ...TUS, "upload-length": "100" } });
    expect([made.status, made.headers.get("spool-video-id")]).toEqual([201, videoId]);
    expect(await spool.ctx.library.get(videoId)).toMatchObject({ status: "uploading" });
    expect(uploadFiles(videoId)).toHaveLength(2);
    expect((await directRow(videoId)).settledAt).toBeInstanceOf(Date);
    expect((await fetch(`${spool.url}${made.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);
  });

  test("a video INSERT that committed but whose answer was lost (a query deadline): the URL comes back, and tus-js-client's retry uploads the file", async () => {
    const { uploadUrl, videoId } = await issueDirect();
    const library = spool.ctx.library;
    const begin = library.begin.bind(library);
    library.begin = async (...args: Parameters<typeof begin>) => {
      library.begin = begin;
      await begin(...args);
      throw new QueryTimeout(10_000);
    };
    try {
      const data = Buffer.from(await Bun.file(new URL("../../fixtures/demo.mp4", import.meta.url)).arrayBuffer());
      const statuses: string[] = [];
      const done = await runUpload(data, { endpoint: spool.url + uploadUrl, retryDelays: [0, 500, 1000], onAfterResponse: (req, res) => void statuses.push(`${req.getMethod()} ${res.getStatus()}`) });
      expect(done.error).toBeUndefined();
      expect(statuses).toEqual(["POST 503", "POST 201", "PATCH 204"]);
      expect((await waitUntilSettled(spool.url, videoId)).status).toBe("ready");
      expect(Buffer.from(await (await fetch(`${spool.url}/api/stream/${videoId}`)).arrayBuffer())).toEqual(data);
    } finally {
      library.begin = begin;
    }
  });
});

describe("what Spool answers before tus does", () => {
  test("carries CORS and Tus-Resumable, as tus's own answers do: a page on another site can read why (401, a used or unknown direct upload URL)", async () => {
    const origin = { origin: "https://app.example" };
    const issued = await fetch(`${spool.url}/api/uploads/direct`, { method: "POST", headers: { ...AUTH, ...origin, "content-type": "application/json" }, body: "{}" });
    // The key holder's own route is no tus route.
    expect(issued.headers.get("tus-resumable")).toBeNull();
    const { uploadUrl } = (await issued.json()) as { uploadUrl: string };
    const creation = { ...TUS, ...origin, "upload-length": "10" };
    const created = await fetch(spool.url + uploadUrl, { method: "POST", headers: creation });
    expect(created.status).toBe(201);
    const refusals = [
      [await fetch(spool.url + uploadUrl, { method: "POST", headers: { ...creation, "upload-length": "11" } }), 410, "upload_url_used"],
      [await fetch(`${spool.url}/api/uploads/direct/${"x".repeat(43)}`, { method: "POST", headers: creation }), 403, "upload_url_invalid"],
      [await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: creation }), 401, "unauthorized"],
    ] as const;
    // What the page may read of them is what it may read of tus's own answers, Tus-Resumable included.
    const exposed = (r: Response) => new Set(r.headers.get("access-control-expose-headers")!.split(", ").map((h) => h.toLowerCase()));
    for (const name of ["tus-resumable", "upload-offset", "location", "spool-video-id", "retry-after"]) expect(exposed(created).has(name)).toBe(true);
    for (const [response, status, code] of refusals) {
      expect({ code, cors: response.headers.get("access-control-allow-origin"), tus: response.headers.get("tus-resumable") }).toEqual({ code, cors: "*", tus: "1.0.0" });
      expect([...exposed(created)].filter((h) => !exposed(response).has(h) && !["authorization", "content-type", "x-http-method-override", "x-requested-with"].includes(h))).toEqual([]);
      await expectError(response, status, code);
    }
    expect((await fetch(`${spool.url}${created.headers.get("location")}`, { method: "DELETE", headers: TUS })).status).toBe(204);
  });
});

describe("a creation-with-upload whose body overflows leaves nothing", () => {
  /** Every row and every file of the tus store and the library, to compare before and after. */
  const everything = async () => ({ ids: (await listAll(spool.url)).map((v) => v.id).sort(), uploads: filesUnder(uploadsDir()), videos: filesUnder(join(spool.dataDir, "videos")), tmp: filesUnder(join(spool.dataDir, "tmp")) });
  /** A body streamed chunked (no Content-Length), `total` bytes in 64 KiB pieces. */
  const chunked = (total: number) => {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= total) return controller.close();
        const piece = new Uint8Array(Math.min(64 * 1024, total - sent));
        sent += piece.length;
        controller.enqueue(piece);
      },
    });
  };
  const creation = { ...CREATE, "content-type": "application/offset+octet-stream" };

  test.each([
    ["a chunked body longer than its Upload-Length", { "upload-length": "1000" }, () => chunked(200 * 1024)],
    ["a declared Content-Length longer than its Upload-Length", { "upload-length": "100" }, () => new Uint8Array(1000)],
    ["a deferred length whose chunked body passes MAX_UPLOAD_BYTES", { "upload-defer-length": "1" }, () => chunked(LIMIT + 1024 * 1024)],
  ])("%s: 413, no files, no video", async (_name, headers, body) => {
    const before = await everything();
    const response = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...creation, ...headers }, body: body(), duplex: "half" } as RequestInit);
    await expectError(response, 413, "payload_too_large");
    expect(response.headers.get("location")).toBeNull();
    for (let i = 0; i < 200 && JSON.stringify(await everything()) !== JSON.stringify(before); i++) await Bun.sleep(50);
    expect(await everything()).toEqual(before);
  });
});

describe("abandoned uploads expire", () => {
  test("after UPLOAD_EXPIRY_MS the sweeper deletes the bytes and the `uploading` video", async () => {
    const short = await startTestSpool({ seedDemo: false, uploadExpiryMs: 1000, jobKinds: NO_HLS });
    try {
      const { response: created, uploadUrl, id } = await create({ "upload-length": "100" }, short);
      const expires = Date.parse(created.headers.get("upload-expires")!);
      expect(expires).toBeLessThanOrEqual(Date.now() + 1000);
      await fetch(uploadUrl, {
        method: "PATCH",
        headers: { ...TUS, "upload-offset": "0", "content-type": "application/offset+octet-stream" },
        body: new Uint8Array(50),
      });
      expect(uploadFiles(id, short)).toEqual([uploadIdOf(uploadUrl), `${uploadIdOf(uploadUrl)}.json`]);
      // Past its expiry, the protocol already refuses it...
      await Bun.sleep(1100);
      const late = await fetch(uploadUrl, {
        method: "PATCH",
        headers: { ...TUS, "upload-offset": "50", "content-type": "application/offset+octet-stream" },
        body: new Uint8Array(50),
      });
      expect([404, 410]).toContain(late.status);
      // ...and the sweeper (every second here) removes every trace.
      for (let i = 0; i < 40 && filesUnder(uploadsDir(short)).length; i++) await Bun.sleep(100);
      expect(filesUnder(uploadsDir(short))).toEqual([]);
      await expectError(await fetch(`${short.url}/api/videos/${id}`), 404, "not_found");
    } finally {
      await short.stop();
    }
  });

  test("sweepExpired leaves live uploads alone", async () => {
    const { uploadUrl, id } = await create({ "upload-length": "100" });
    expect(await spool.ctx.uploads.sweepExpired()).toBe(0);
    expect(uploadFiles(id)).toEqual([uploadIdOf(uploadUrl), `${uploadIdOf(uploadUrl)}.json`]);
    expect(await spool.ctx.uploads.sweepExpired(Date.now() + 25 * 3600_000)).toBeGreaterThanOrEqual(1);
    expect(uploadFiles(id)).toEqual([]); // everything, whatever other tests left
    expect(await spool.ctx.library.get(id)).toBeUndefined();
  });

  test("sweepExpired removes the locks that processes killed mid-PATCH left, once their uploads are gone; live and fresh ones stay", async () => {
    const locks = join(spool.dataDir, "locks", "uploads");
    await mkdir(locks, { recursive: true });
    // What proper-lockfile leaves when its holder is killed: the lock directory.
    const live = await create({ "upload-length": "100" });
    const liveLock = join(locks, `${uploadIdOf(live.uploadUrl)}.lock`);
    const goneLock = join(locks, `${live.id.replace(/^./, (c) => (c === "A" ? "B" : "A"))}.${"s".repeat(32)}.lock`);
    for (const lock of [liveLock, goneLock]) await mkdir(lock);
    const hour = 3600_000;
    // At once: a lock not refreshed for under a minute may still have a holder.
    await spool.ctx.uploads.sweepExpired();
    expect(existsSync(goneLock) && existsSync(liveLock)).toBe(true);
    // Later (an hour without a refresh): the gone upload's lock goes; the live upload's stays.
    await spool.ctx.uploads.sweepExpired(Date.now() + hour);
    expect({ gone: existsSync(goneLock), live: existsSync(liveLock) }).toEqual({ gone: false, live: true });
    // Once the upload itself expires, its lock goes with it.
    await spool.ctx.uploads.sweepExpired(Date.now() + 25 * hour);
    expect(existsSync(liveLock)).toBe(false);
  });
});
