/** POST /api/videos: streamed multipart uploads, and what a broken upload leaves behind (nothing). */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { sendUntilAnswered } from "../helpers/http.ts";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { filesUnder } from "../helpers/library.ts";

// Uploads, processing and ffmpeg on a busy 2-core machine take longer than bun's default 5 s.
setDefaultTimeout(30_000);

const FIXTURE = resolve(import.meta.dir, "../../fixtures/demo.mp4");
const bytes = readFileSync(FIXTURE);

let spool: TestSpool;
beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false, maxUploadBytes: 1024 * 1024 });
});
afterAll(() => spool?.stop());

type Video = { id: string; status: string; title: string; size: number; streamUrl: string; error: string | null };

async function waitUntilSettled(id: string): Promise<Video> {
  for (let i = 0; i < 300; i++) {
    const video = (await (await fetch(`${spool.url}/api/videos/${id}`)).json()) as Video;
    if (video.status === "ready" || video.status === "failed") return video;
    await Bun.sleep(100);
  }
  throw new Error(`video ${id} never settled`);
}

function form(file: Blob | undefined, name: string, title?: string): FormData {
  const data = new FormData();
  if (title !== undefined) data.append("title", title);
  if (file) data.append("file", file, name);
  return data;
}

const listIds = async () => ((await (await fetch(`${spool.url}/api/videos`, { headers: AUTH })).json()) as { items: Video[] }).items.map((v) => v.id);
const tmpFiles = () => filesUnder(join(spool.dataDir, "tmp"));

describe("POST /api/videos", () => {
  test("201 with the video's JSON; the stream serves the exact bytes", async () => {
    const r = await fetch(`${spool.url}/api/videos`, { method: "POST", body: form(new Blob([bytes]), "clip.mp4", "My clip"), headers: AUTH });
    expect(r.status).toBe(201);
    const created = (await r.json()) as Video;
    expect(r.headers.get("location")).toBe(`/api/videos/${created.id}`);
    expect(created.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(created.title).toBe("My clip");
    const video = await waitUntilSettled(created.id);
    expect(video.status).toBe("ready");
    expect(video.size).toBe(bytes.length);
    expect(video.streamUrl).toBe(`/api/stream/${created.id}`);
    const streamed = await fetch(spool.url + video.streamUrl);
    expect(Buffer.from(await streamed.arrayBuffer())).toEqual(bytes);
    expect(await listIds()).toContain(created.id);
    expect(tmpFiles()).toEqual([]);
  });

  test("title sent after the file part is still applied", async () => {
    const data = new FormData();
    data.append("file", new Blob([bytes]), "late-title.mp4");
    data.append("title", "Late title");
    const created = (await (await fetch(`${spool.url}/api/videos`, { method: "POST", body: data, headers: AUTH })).json()) as Video;
    expect((await waitUntilSettled(created.id)).title).toBe("Late title");
  });

  test("a file name in UTF-8, as browsers send it: kept as sent, and the title made from it", async () => {
    // Browsers (and curl -F) put the name's UTF-8 bytes in the header as they are; busboy 1.6
    // reads header parameters as Latin-1 unless told otherwise ("cafÃ©").
    const boundary = "utf8boundary";
    const name = "café – 日本.mp4";
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: video/mp4\r\n\r\n`, "utf8"),
      bytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const r = await fetch(`${spool.url}/api/videos`, { method: "POST", body, headers: { ...AUTH, "content-type": `multipart/form-data; boundary=${boundary}` } });
    expect(r.status).toBe(201);
    const created = (await r.json()) as Video & { originalFilename: string };
    expect([created.originalFilename, created.title]).toEqual([name, "café – 日本"]);
  });

  test("no file field: 400", async () => {
    const before = await listIds();
    const r = await fetch(`${spool.url}/api/videos`, { method: "POST", body: form(undefined, "", "nothing"), headers: AUTH });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("bad_request");
    expect(await listIds()).toEqual(before);
  });

  test("not multipart: 415", async () => {
    const r = await fetch(`${spool.url}/api/videos`, { method: "POST", body: bytes, headers: { ...AUTH, "content-type": "video/mp4" } });
    expect(r.status).toBe(415);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("unsupported_media_type");
  });

  test("over MAX_UPLOAD_BYTES: 413 and nothing kept", async () => {
    const before = await listIds();
    const big = new Blob([bytes, bytes, bytes, bytes, bytes]); // 5 x 280 KB > 1 MiB
    const r = await fetch(`${spool.url}/api/videos`, { method: "POST", body: form(big, "big.mp4"), headers: AUTH });
    expect(r.status).toBe(413);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
    expect(await listIds()).toEqual(before);
    expect(tmpFiles()).toEqual([]);
  });

  test("a declared Content-Length over the limit gets a JSON 413 before any byte is read", async () => {
    const { rawRequest } = await import("../helpers/http.ts");
    // A real upload URL (the upload id is `<video id>.<secret>`, from the creation's Location).
    const creation = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": "100" } });
    expect(creation.status).toBe(201);
    const uploadPath = creation.headers.get("location")!;
    for (const [method, path, authorization] of [
      ["POST", "/api/videos", `Authorization: ${AUTH.authorization}\r\n`],
      ["PATCH", uploadPath, ""], // an upload URL needs no key: it is its own credential
    ]) {
      const r = await rawRequest(
        spool.port,
        `${method} ${path} HTTP/1.1\r\nHost: x\r\n${authorization}Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n`,
      );
      expect(r.status).toBe(413);
      expect(JSON.parse(r.body.toString()).error.code).toBe("payload_too_large");
    }
    expect((await fetch(`${spool.url}${uploadPath}`, { method: "DELETE", headers: { "tus-resumable": "1.0.0" } })).status).toBe(204);
  });

  // The import form and the direct-upload request share paths with uploads, but are small JSON
  // bodies read whole: they get the JSON limit, not MAX_UPLOAD_BYTES (which let one request
  // make the server buffer gigabytes).
  test.each([
    ["PATCH", "/api/videos/AAAAAAAAAAAAAAAAAAAAAA", "application/json"],
    ["POST", "/api/videos", "application/json"],
    ["POST", "/api/videos", "application/vnd.api+json; charset=utf-8"],
    ["POST", "/api/uploads/direct", "application/json"],
  ])("JSON bodies (%s %s, %s): over 1 MiB is 413, unknown length is 411, before any byte is read", async (method, path, type) => {
    const { rawRequest } = await import("../helpers/http.ts");
    const head = `${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: ${type}\r\n`;
    const big = await rawRequest(spool.port, `${head}Content-Length: 2000000\r\nConnection: close\r\n\r\n`);
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body.toString()).error.code).toBe("payload_too_large");
    const chunked = await rawRequest(spool.port, `${head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n`);
    expect(chunked.status).toBe(411);
    expect(JSON.parse(chunked.body.toString()).error.code).toBe("length_required");
  });

  test.each([
    ["other parts after a small file part", "parts"],
    ["an epilogue after the closing boundary", "epilogue"],
    ["other parts before the file part", "preamble-parts"],
  ])("a chunked body with %s: 413 once the whole body passes the limit, before it is read to the end; nothing kept", async (_name, shape) => {
    const before = await listIds();
    const videoDirs = () => readdirSync(join(spool.dataDir, "videos")).sort();
    const dirsBefore = videoDirs();
    const boundary = "spoolbodycap";
    const filePart = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="small.mp4"\r\nContent-Type: video/mp4\r\n\r\n`),
      bytes, // 280 KB: well within MAX_UPLOAD_BYTES (1 MiB)
      Buffer.from("\r\n"),
    ]);
    const otherHead = (i: number) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="extra${i}"; filename="extra${i}.bin"\r\n\r\n`);
    const filler = Buffer.alloc(64 * 1024, 0x2a);
    const total = 200 * 1024 * 1024; // what the client means to send
    const request = `POST /api/videos HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const result = await sendUntilAnswered(spool.port, request, true, async (chunk, stop, sent) => {
      let part = 0;
      if (shape === "preamble-parts") chunk(otherHead(part++));
      else chunk(filePart);
      if (shape === "epilogue") chunk(Buffer.from(`--${boundary}--\r\n`));
      else if (shape === "parts") chunk(otherHead(part++));
      while (!stop() && sent() < total) {
        chunk(filler);
        // Many parts, not one big one: each stays under any per-part limit.
        if (shape !== "epilogue" && sent() % (512 * 1024) < filler.length) chunk(Buffer.concat([Buffer.from("\r\n"), otherHead(part++)]));
        await Bun.sleep(1);
      }
    });
    expect(result.status).toBe(413);
    expect(JSON.parse(result.body)).toEqual({ error: { code: "payload_too_large", message: "The upload exceeds the limit of 1048576 bytes (MAX_UPLOAD_BYTES)" } });
    // Answered once the body passed 1 MiB + 64 KiB, not after the 200 MiB.
    expect(result.sent).toBeGreaterThan(1024 * 1024);
    expect(result.sent).toBeLessThan(8 * 1024 * 1024);
    for (let i = 0; i < 50 && tmpFiles().length > 0; i++) await Bun.sleep(50);
    expect(tmpFiles()).toEqual([]);
    expect(await listIds()).toEqual(before);
    expect(videoDirs()).toEqual(dirsBefore);
  });

  test("a title refused while the file part streams in, chunked: 400 JSON, nothing kept, and the server lives on", async () => {
    // Before, the file part's stream was destroyed with no listener for its error: an uncaught
    // "Premature close" ended the process (the whole cluster, when it was the primary).
    const boundary = "----spoolrefusedtitle";
    const encoder = new TextEncoder();
    for (const title of ["x".repeat(600), "bell\u0007"]) {
      const parts = [
        `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n${title}\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ];
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          for (const part of parts) controller.enqueue(encoder.encode(part));
          for (let i = 0; i < 12; i++) {
            controller.enqueue(crypto.getRandomValues(new Uint8Array(64 * 1024)));
            await Bun.sleep(5);
          }
          controller.enqueue(encoder.encode(`\r\n--${boundary}--\r\n`));
          controller.close();
        },
      });
      const before = await listIds();
      const response = await fetch(`${spool.url}/api/videos`, { method: "POST", headers: { ...AUTH, "content-type": `multipart/form-data; boundary=${boundary}` }, body }).catch((error: Error) => error);
      // The answer, or (cut off while still sending) a reset; either way the server goes on.
      if (response instanceof Response) expect([response.status, ((await response.json()) as { error: { code: string } }).error.code]).toEqual([400, "bad_request"]);
      await Bun.sleep(300);
      expect((await fetch(`${spool.url}/health`)).status).toBe(200);
      for (let i = 0; i < 50 && tmpFiles().length > 0; i++) await Bun.sleep(100);
      expect(tmpFiles()).toEqual([]);
      expect(await listIds()).toEqual(before);
    }
  });

  test("an upload cut off midway leaves nothing streamable, and nothing on disk", async () => {
    const before = await listIds();
    const boundary = "----spooltestboundary";
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.mp4"\r\nContent-Type: video/mp4\r\n\r\n`;
    const total = head.length + bytes.length + `\r\n--${boundary}--\r\n`.length;
    await new Promise<void>((done) => {
      const socket = connect(spool.port, "127.0.0.1", () => {
        socket.write(
          `POST /api/videos HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${total}\r\n\r\n` + head,
        );
        socket.write(bytes.subarray(0, bytes.length / 2), () => setTimeout(() => (socket.destroy(), done()), 200));
      });
    });
    // Give the server a moment to notice the reset and clean up.
    for (let i = 0; i < 50 && tmpFiles().length > 0; i++) await Bun.sleep(100);
    expect(tmpFiles()).toEqual([]);
    const after = await listIds();
    expect(after).toEqual(before);
    const videoDirs = readdirSync(join(spool.dataDir, "videos"));
    expect(videoDirs.sort()).toEqual(before.slice().sort());
  });
});
