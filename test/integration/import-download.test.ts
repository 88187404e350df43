/**
 * The import downloader against real HTTP servers on 127.0.0.1 (so `allowPrivate` unless the
 * test is about refusing loopback): bytes and hash, resumption after a dropped connection,
 * redirects, every refusal and timeout, and nothing left on disk after a failure.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import zlib from "node:zlib";
import { join } from "node:path";
import { downloadToFile, type DownloadOptions } from "../../src/media/import/download.ts";
import { ImportError } from "../../src/media/import/errors.ts";

const DATA = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
const SHA = createHash("sha256").update(DATA).digest("hex");
const ETAG = '"v1-abc"';

let dir: string;
let servers: { stop: () => unknown }[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "spool-import-"));
});
afterEach(async () => {
  for (const s of servers) await s.stop();
  servers = [];
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A Bun server on 127.0.0.1 that records every request it gets. */
function serve(handler: (req: Request, n: number) => Response | Promise<Response>) {
  const seen: Request[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch: (req) => {
      seen.push(req);
      return handler(req, seen.length);
    },
  });
  servers.push({ stop: () => server.stop(true) });
  return { url: `http://127.0.0.1:${server.port}`, port: server.port, seen };
}

/** A node:http server (it can announce a Content-Length and then break the connection). */
async function nodeServe(handler: http.RequestListener) {
  const seen: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  servers.push({ stop: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r(undefined)))) });
  return { url: `http://127.0.0.1:${port}`, seen };
}

/** Serves DATA with ranges (206 for `bytes=N-`), as a file server would. */
function rangeAnswer(req: Request): Response {
  const range = req.headers.get("range");
  const headers = { "accept-ranges": "bytes", etag: ETAG, "content-type": "video/mp4" };
  const m = range && /^bytes=(\d+)-$/.exec(range);
  if (m && req.headers.get("if-range") === ETAG) {
    const start = Number(m[1]);
    return new Response(DATA.subarray(start), { status: 206, headers: { ...headers, "content-range": `bytes ${start}-${DATA.length - 1}/${DATA.length}` } });
  }
  return new Response(DATA, { headers });
}

interface RawRequest {
  range: string | null;
  ifRange: string | null;
}
interface RawAnswer {
  /** Status line and header lines, without the blank line. */
  head: readonly string[];
  body?: Uint8Array;
  /** After the body: close the connection (default), or hold it open sending nothing. */
  then?: "close" | "hold";
}

/**
 * A raw TCP source (Bun.listen): the test writes every byte of each answer itself, so it can
 * break HTTP the way misbehaving servers do (a 206 that ignores If-Range, a body longer than its
 * Content-Range, a connection closed before its Content-Length).
 */
function rawServe(answer: (req: RawRequest, n: number) => RawAnswer) {
  const seen: RawRequest[] = [];
  type Conn = { head: string; pending: Uint8Array[]; then: "close" | "hold" | null };
  const flush = (socket: { data: Conn; write(b: Uint8Array): number; end(): void }) => {
    const conn = socket.data;
    while (conn.pending.length) {
      const next = conn.pending[0]!;
      const written = socket.write(next);
      if (written < next.byteLength) {
        conn.pending[0] = next.subarray(Math.max(written, 0));
        return;
      }
      conn.pending.shift();
    }
    if (conn.then === "close") socket.end();
  };
  const server = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.data = { head: "", pending: [], then: null };
      },
      data(socket, data) {
        const conn = socket.data;
        if (conn.then) return;
        conn.head += Buffer.from(data).toString("latin1");
        if (!conn.head.includes("\r\n\r\n")) return;
        const header = (name: string) => new RegExp(`^${name}:\\s*(.*?)\\s*$`, "im").exec(conn.head)?.[1] ?? null;
        const req = { range: header("range"), ifRange: header("if-range") };
        seen.push(req);
        const a = answer(req, seen.length);
        conn.then = a.then ?? "close";
        conn.pending.push(Buffer.from(`${a.head.join("\r\n")}\r\nConnection: close\r\n\r\n`, "latin1"));
        if (a.body?.byteLength) conn.pending.push(a.body);
        flush(socket);
      },
      drain(socket) {
        flush(socket);
      },
    },
  });
  servers.push({ stop: () => server.stop(true) });
  return { url: `http://127.0.0.1:${server.port}`, seen };
}

const LOCAL: Partial<DownloadOptions> = { allowPrivate: true, maxBytes: 10_000_000, connectTimeoutMs: 3000, idleTimeoutMs: 3000 };

async function expectFailure(promise: Promise<unknown>, code: string, message: RegExp): Promise<ImportError> {
  const error = await promise.then(
    () => {
      throw new Error("the download should have failed");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImportError);
  const e = error as ImportError;
  expect(e.code as string).toBe(code);
  expect(e.message).toMatch(message);
  return e;
}

async function leftovers(): Promise<string[]> {
  return readdir(dir);
}

describe("downloadToFile", () => {
  test("the bytes arrive identical, hashed, with progress up to the total", async () => {
    const source = serve((req) => rangeAnswer(req));
    const progress: { bytes: number; total: number | null }[] = [];
    const dest = join(dir, "ok");
    const result = await downloadToFile(`${source.url}/clips/holiday%20clip.mp4?x=1`, dest, { ...LOCAL, maxBytes: DATA.length, onProgress: (p) => progress.push(p), progressIntervalMs: 0 });
    expect(result).toMatchObject({ sha256: SHA, size: DATA.length, contentType: "video/mp4", filename: "holiday clip.mp4", requests: 1, resumes: 0 });
    expect(Buffer.from(await Bun.file(dest).arrayBuffer()).equals(DATA)).toBe(true);
    expect(progress[0]).toEqual({ bytes: 0, total: DATA.length });
    expect(progress.at(-1)).toEqual({ bytes: DATA.length, total: DATA.length });
    expect(source.seen[0]!.headers.get("accept-encoding")).toBe("identity");
    await rm(dest);
  });

  test("a connection dropped half-way is resumed with Range and If-Range", async () => {
    const source = serve((req, n) => {
      if (n === 1) {
        // Half the body, then the connection breaks.
        const half = DATA.subarray(0, DATA.length / 2);
        return new Response(
          new ReadableStream({
            async start(controller) {
              controller.enqueue(half);
              await Bun.sleep(50);
              controller.error(new Error("dropped"));
            },
          }),
          { headers: { "accept-ranges": "bytes", etag: ETAG } },
        );
      }
      return rangeAnswer(req);
    });
    const dest = join(dir, "resumed");
    const result = await downloadToFile(`${source.url}/v.mp4`, dest, LOCAL as DownloadOptions);
    expect(source.seen.length).toBe(2);
    expect(source.seen[0]!.headers.get("range")).toBeNull();
    expect(source.seen[1]!.headers.get("range")).toMatch(/^bytes=\d+-$/);
    expect(source.seen[1]!.headers.get("if-range")).toBe(ETAG);
    expect(result).toMatchObject({ sha256: SHA, size: DATA.length, resumes: 1, requests: 2 });
    expect(Buffer.from(await Bun.file(dest).arrayBuffer()).equals(DATA)).toBe(true);
    await rm(dest);
  });

  test("a body shorter than its Content-Length is resumed too", async () => {
    const source = await nodeServe((req, res) => {
      const range = req.headers.range;
      if (range) {
        const start = Number(/bytes=(\d+)-/.exec(range)![1]);
        res.writeHead(206, { "content-range": `bytes ${start}-${DATA.length - 1}/${DATA.length}`, "content-length": DATA.length - start, "last-modified": "Tue, 01 Dec 2026 10:00:00 GMT", "accept-ranges": "bytes" });
        res.end(DATA.subarray(start));
        return;
      }
      res.writeHead(200, { "content-length": DATA.length, "accept-ranges": "bytes", "last-modified": "Tue, 01 Dec 2026 10:00:00 GMT" });
      res.write(DATA.subarray(0, 100_000), () => setTimeout(() => res.socket!.destroy(), 30));
    });
    const dest = join(dir, "short");
    const result = await downloadToFile(`${source.url}/v.mp4`, dest, LOCAL as DownloadOptions);
    expect(source.seen.map((r) => r.headers["if-range"] ?? null)).toEqual([null, "Tue, 01 Dec 2026 10:00:00 GMT"]);
    expect(result).toMatchObject({ sha256: SHA, size: DATA.length, resumes: 1 });
    await rm(dest);
  });

  test("a source that changed answers the resumption with 200: the download starts over", async () => {
    const source = serve((req, n) => {
      if (n === 1) {
        return new Response(
          new ReadableStream({
            async start(controller) {
              controller.enqueue(new Uint8Array(1000).fill(1));
              await Bun.sleep(30);
              controller.error(new Error("dropped"));
            },
          }),
          { headers: { "accept-ranges": "bytes", etag: '"old"' } },
        );
      }
      return rangeAnswer(req); // If-Range "old" does not match: the whole new file
    });
    const dest = join(dir, "changed");
    const result = await downloadToFile(`${source.url}/v`, dest, LOCAL as DownloadOptions);
    expect(result).toMatchObject({ sha256: SHA, size: DATA.length });
    expect(Buffer.from(await Bun.file(dest).arrayBuffer()).equals(DATA)).toBe(true);
    await rm(dest);
  });

  test("a dropped connection without range support fails with the reason, nothing kept", async () => {
    const source = serve(
      () =>
        new Response(
          new ReadableStream({
            async start(controller) {
              controller.enqueue(DATA.subarray(0, 5000));
              await Bun.sleep(30);
              controller.error(new Error("dropped"));
            },
          }),
        ),
    );
    await expectFailure(downloadToFile(`${source.url}/v`, join(dir, "nr"), LOCAL as DownloadOptions), "network", /not resumed: the source does not accept range requests/);
    expect(await leftovers()).toEqual([]);
  });

  test("a redirect chain is followed to the file, relative Locations too", async () => {
    const source = serve((req) => {
      const path = new URL(req.url).pathname;
      if (path === "/a") return Response.redirect(`${new URL(req.url).origin}/b`, 302);
      if (path === "/b") return new Response(null, { status: 301, headers: { location: "/c" } });
      if (path === "/c") return new Response(null, { status: 307, headers: { location: "d.mp4" } });
      return rangeAnswer(req);
    });
    const dest = join(dir, "redirected");
    const result = await downloadToFile(`${source.url}/a`, dest, LOCAL as DownloadOptions);
    expect(result).toMatchObject({ sha256: SHA, url: `${source.url}/d.mp4`, requests: 4, filename: "d.mp4" });
    await rm(dest);
  });

  test("too many redirects", async () => {
    const source = serve((req, n) => new Response(null, { status: 302, headers: { location: `/hop${n}` } }));
    await expectFailure(downloadToFile(`${source.url}/start`, join(dir, "loop"), { ...LOCAL, maxRedirects: 3 } as DownloadOptions), "redirect", /too many redirects \(more than 3\)/);
    expect(source.seen.length).toBe(4);
    expect(await leftovers()).toEqual([]);
  });

  test("loopback is refused without allowPrivate, by literal and by resolved name, before any request", async () => {
    const source = serve((req) => rangeAnswer(req));
    const strict = { ...LOCAL, allowPrivate: false } as DownloadOptions;
    await expectFailure(downloadToFile(`${source.url}/v`, join(dir, "l1"), strict), "blocked_address", /^Import from a loopback address is not allowed \(127\.0\.0\.1\)/);
    await expectFailure(downloadToFile(`http://localhost:${source.port}/v`, join(dir, "l2"), strict), "blocked_address", /^Import from a loopback address is not allowed \(localhost resolves to (127\.0\.0\.1|::1)\)/);
    await expectFailure(downloadToFile(`http://[::ffff:127.0.0.1]:${source.port}/v`, join(dir, "l3"), strict), "blocked_address", /loopback/);
    expect(source.seen.length).toBe(0);
    expect(await leftovers()).toEqual([]);
  });

  test("a redirect to loopback is refused (each hop is checked)", async () => {
    // The source (127.0.0.1) is let through as an allowed network; what it redirects to
    // (127.0.0.2, loopback too) is not.
    const target = Bun.serve({ hostname: "127.0.0.2", port: 0, fetch: (req) => rangeAnswer(req) });
    servers.push({ stop: () => target.stop(true) });
    const source = serve(() => Response.redirect(`http://127.0.0.2:${target.port}/v`, 302));
    const policy = { ...LOCAL, allowPrivate: false, allowedNetworks: ["127.0.0.1/32"] } as DownloadOptions;
    // Allowed networks do reach the source itself.
    const direct = serve((req) => rangeAnswer(req));
    expect((await downloadToFile(`${direct.url}/v`, join(dir, "d"), policy)).sha256).toBe(SHA);
    await rm(join(dir, "d"));
    await expectFailure(downloadToFile(`${source.url}/start`, join(dir, "r"), policy), "blocked_address", /^Redirect to a loopback address is not allowed \(127\.0\.0\.2\)/);
    expect(source.seen.length).toBe(1);
    expect(await leftovers()).toEqual([]);
  });

  test("host allow-list: other hosts, and redirects to them, are refused", async () => {
    const other = serve((req) => rangeAnswer(req));
    const source = serve(() => Response.redirect(`http://localhost:${other.port}/v`, 302));
    await expectFailure(downloadToFile(`http://localhost:${other.port}/v`, join(dir, "h1"), { ...LOCAL, allowedHosts: ["example.com"] } as DownloadOptions), "host_not_allowed", /localhost is not allowed; this server imports only from example.com \(IMPORT_ALLOWED_HOSTS\)/);
    await expectFailure(downloadToFile(`${source.url}/s`, join(dir, "h2"), { ...LOCAL, allowedHosts: ["127.0.0.1"] } as DownloadOptions), "host_not_allowed", /^A redirect to localhost is not allowed/);
    expect(other.seen.length).toBe(0);
    expect(await leftovers()).toEqual([]);
  });

  test("file:, data:, ftp: and malformed URLs are refused as invalid (400)", async () => {
    for (const [url, message] of [
      ["file:///etc/passwd", /file: URLs is not supported/],
      ["data:video/mp4;base64,AAAA", /data: URLs is not supported/],
      ["ftp://example.com/x.mp4", /ftp: URLs is not supported/],
      ["not a url", /Not a valid URL/],
      ["http://", /Not a valid URL|no host/],
    ] as const) {
      const e = await expectFailure(downloadToFile(url, join(dir, "bad"), LOCAL as DownloadOptions), "invalid_url", message);
      expect(e.status).toBe(400);
    }
    expect(await leftovers()).toEqual([]);
  });

  test("404 and 5xx fail with the status in the message", async () => {
    const source = serve((req) => new Response("nope", { status: new URL(req.url).pathname === "/missing" ? 404 : 503 }));
    const e404 = await expectFailure(downloadToFile(`${source.url}/missing`, join(dir, "s"), LOCAL as DownloadOptions), "source_status", /^source answered 404 Not Found$/);
    expect(e404.sourceStatus).toBe(404);
    await expectFailure(downloadToFile(`${source.url}/down`, join(dir, "s"), LOCAL as DownloadOptions), "source_status", /^source answered 503 Service Unavailable$/);
    expect(await leftovers()).toEqual([]);
  });

  test("a source that never answers times out; one that stops sending times out too", async () => {
    const silent = serve(() => new Promise<Response>(() => {}));
    await expectFailure(downloadToFile(`${silent.url}/v`, join(dir, "t1"), { ...LOCAL, connectTimeoutMs: 200 } as DownloadOptions), "timeout", /^timed out after 0\.2 s waiting for 127\.0\.0\.1:\d+ to answer$/);
    const stalled = serve(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(DATA.subarray(0, 1000)); // then nothing, ever
            },
          }),
        ),
    );
    await expectFailure(downloadToFile(`${stalled.url}/v`, join(dir, "t2"), { ...LOCAL, idleTimeoutMs: 200 } as DownloadOptions), "timeout", /^timed out after 0\.2 s without data \(1 kB received; not resumed/);
    expect(await leftovers()).toEqual([]);
  });

  test("a source that trickles below IMPORT_MIN_BYTES_PER_SECOND is dropped; a download past IMPORT_MAX_DURATION_MS stops", async () => {
    // Never idle long enough for the idle timeout, but 200 bytes a second: under the 1 kB/s minimum.
    const trickle = serve(
      () =>
        new Response(
          new ReadableStream({
            async pull(controller) {
              await Bun.sleep(50);
              controller.enqueue(DATA.subarray(0, 10));
            },
          }),
        ),
    );
    const slow = { ...LOCAL, idleTimeoutMs: 300, minBytesPerSecond: 1024 } as DownloadOptions;
    await expectFailure(downloadToFile(`${trickle.url}/v`, join(dir, "r1"), slow), "timeout", /^slower than 1 kB\/s over 0\.3 s \(IMPORT_MIN_BYTES_PER_SECOND\) \(\d+ bytes received; not resumed/);
    // With no minimum the same source is only bounded by the whole-download deadline.
    const started = performance.now();
    await expectFailure(
      downloadToFile(`${trickle.url}/v`, join(dir, "r2"), { ...slow, minBytesPerSecond: 0, maxDurationMs: 700 } as DownloadOptions),
      "timeout",
      /^took longer than 0\.7 s \(IMPORT_MAX_DURATION_MS\)$/,
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(650);
    // The deadline also covers waiting for an answer.
    const silent = serve(() => new Promise<Response>(() => {}));
    await expectFailure(downloadToFile(`${silent.url}/v`, join(dir, "r3"), { ...LOCAL, connectTimeoutMs: 5000, maxDurationMs: 300 } as DownloadOptions), "timeout", /^took longer than 0\.3 s/);
    expect(await leftovers()).toEqual([]);
  });

  test("oversize: refused by Content-Length before reading, and by the running count without one", async () => {
    const announced = await nodeServe((_req, res) => {
      res.writeHead(200, { "content-length": DATA.length });
      res.end(DATA);
    });
    await expectFailure(downloadToFile(`${announced.url}/v`, join(dir, "o1"), { ...LOCAL, maxBytes: 100_000 } as DownloadOptions), "too_large", /it announces 300 kB, the limit is 100 kB \(MAX_UPLOAD_BYTES\)/);
    let sent = 0;
    const chunked = serve(
      () =>
        new Response(
          new ReadableStream({
            async pull(controller) {
              // Endless: only the limit can stop it.
              sent += 16384;
              controller.enqueue(new Uint8Array(16384));
              await Bun.sleep(1);
            },
          }),
        ),
    );
    await expectFailure(downloadToFile(`${chunked.url}/v`, join(dir, "o2"), { ...LOCAL, maxBytes: 100_000 } as DownloadOptions), "too_large", /it sent more than the limit of 100 kB \(MAX_UPLOAD_BYTES\)/);
    expect(sent).toBeLessThan(2_000_000);
    expect(await leftovers()).toEqual([]);
  });

  test.skipIf(!Bun.which("openssl"))("HTTPS: the certificate is checked against the URL's host name, not the address connected to", async () => {
    const made = async (name: string) => {
      const key = join(dir, `${name}.key`);
      const cert = join(dir, `${name}.pem`);
      const run = Bun.spawn(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`], { stderr: "ignore" });
      await run.exited;
      const pem = { key: await Bun.file(key).text(), cert: await Bun.file(cert).text() };
      await rm(key);
      await rm(cert);
      return pem;
    };
    const good = await made("localhost");
    const other = await made("other.test");
    const serveTls = (pem: { key: string; cert: string }) => {
      const server = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: pem, fetch: (req) => rangeAnswer(req) });
      servers.push({ stop: () => server.stop(true) });
      return server.port;
    };
    const okPort = serveTls(good);
    const result = await downloadToFile(`https://localhost:${okPort}/v`, join(dir, "tls"), { ...LOCAL, ca: good.cert } as DownloadOptions);
    expect(result.sha256).toBe(SHA);
    await rm(join(dir, "tls"));
    const badPort = serveTls(other);
    await expectFailure(downloadToFile(`https://localhost:${badPort}/v`, join(dir, "tls"), { ...LOCAL, ca: other.cert } as DownloadOptions), "network", /TLS connection to localhost:\d+ failed: .*(altnames|Hostname)/);
    await expectFailure(downloadToFile(`https://localhost:${okPort}/v`, join(dir, "tls"), LOCAL as DownloadOptions), "network", /TLS connection to localhost:\d+ failed: .*self.signed/i);
    expect(await leftovers()).toEqual([]);
  });

  describe("a resumption is checked against what was being downloaded", () => {
    // The audit's case: 280571 bytes, the connection closing after 93523.
    const SIZE = 280_571;
    const CUT = 93_523;
    const V1 = Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 31) % 253));
    const V2 = Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 17 + 5) % 249));
    const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    const LM1 = "Tue, 01 Dec 2026 10:00:00 GMT";
    const LM2 = "Wed, 02 Dec 2026 10:00:00 GMT";

    /** 200 with V1 cut at CUT, then the given 206, then (asked without Range) the whole `whole`. */
    function source(validator: string, partial: RawAnswer, whole: Buffer, wholeValidator: string) {
      return rawServe((req, n) => {
        if (n === 1) return { head: ["HTTP/1.1 200 OK", "Accept-Ranges: bytes", validator, `Content-Length: ${SIZE}`], body: V1.subarray(0, CUT) };
        if (req.range) return partial;
        return { head: ["HTTP/1.1 200 OK", "Accept-Ranges: bytes", wholeValidator, `Content-Length: ${SIZE}`], body: whole };
      });
    }
    const rest = (from: Buffer, range = `bytes ${CUT}-${SIZE - 1}/${SIZE}`) => ({ range, body: from.subarray(CUT) });

    for (const [name, validator, partial, whole, wholeValidator] of [
      // A server that ignores If-Range: the rest of another version.
      ["a 206 with another ETag (If-Range ignored)", 'ETag: "v1"', { head: ["HTTP/1.1 206 Partial Content", 'ETag: "v2"', `Content-Range: ${rest(V2).range}`, `Content-Length: ${SIZE - CUT}`], body: rest(V2).body }, V2, 'ETag: "v2"'],
      ["a 206 without the ETag", 'ETag: "v1"', { head: ["HTTP/1.1 206 Partial Content", `Content-Range: ${rest(V1).range}`], body: rest(V1).body }, V1, 'ETag: "v1"'],
      ["a 206 with another Last-Modified", `Last-Modified: ${LM1}`, { head: ["HTTP/1.1 206 Partial Content", `Last-Modified: ${LM2}`, `Content-Range: ${rest(V2).range}`], body: rest(V2).body }, V2, `Last-Modified: ${LM2}`],
      ["a 206 of another size", 'ETag: "v1"', { head: ["HTTP/1.1 206 Partial Content", 'ETag: "v1"', `Content-Range: bytes ${CUT}-${SIZE + 9999}/${SIZE + 10_000}`], body: Buffer.alloc(SIZE + 10_000 - CUT, 9) }, V1, 'ETag: "v1"'],
      ["a 206 from another offset", 'ETag: "v1"', { head: ["HTTP/1.1 206 Partial Content", 'ETag: "v1"', `Content-Range: bytes 0-${SIZE - 1}/${SIZE}`], body: V1 }, V1, 'ETag: "v1"'],
      ["a 206 whose Content-Length is not its range's", 'ETag: "v1"', { head: ["HTTP/1.1 206 Partial Content", 'ETag: "v1"', `Content-Range: ${rest(V1).range}`, `Content-Length: ${SIZE - CUT + 100}`], body: Buffer.concat([rest(V1).body, Buffer.alloc(100, 1)]) }, V1, 'ETag: "v1"'],
    ] as const) {
      test(`${name} is not appended: the download starts over without Range`, async () => {
        const src = source(validator, partial, whole, wholeValidator);
        const dest = join(dir, "checked");
        const result = await downloadToFile(`${src.url}/v.mp4`, dest, LOCAL as DownloadOptions);
        expect(src.seen).toEqual([
          { range: null, ifRange: null },
          { range: `bytes=${CUT}-`, ifRange: validator.replace(/^[^:]+: /, "") },
          { range: null, ifRange: null },
        ]);
        expect(result).toMatchObject({ sha256: sha(whole), size: SIZE, requests: 3, resumes: 1 });
        expect(Buffer.from(await Bun.file(dest).arrayBuffer()).equals(whole)).toBe(true);
        await rm(dest);
      });
    }

    test("a matching 206 (raw) still continues the same file", async () => {
      const src = source('ETag: "v1"', { head: ["HTTP/1.1 206 Partial Content", 'ETag: "v1"', `Content-Range: ${rest(V1).range}`, `Content-Length: ${SIZE - CUT}`], body: rest(V1).body }, V2, 'ETag: "v2"');
      const dest = join(dir, "matching");
      const result = await downloadToFile(`${src.url}/v.mp4`, dest, LOCAL as DownloadOptions);
      expect(src.seen.length).toBe(2);
      expect(result).toMatchObject({ sha256: sha(V1), size: SIZE, requests: 2, resumes: 1 });
      await rm(dest);
    });

    test("a 206 whose body runs past its Content-Range fails, and keeps nothing", async () => {
      const src = source('ETag: "v1"', { head: ["HTTP/1.1 206 Partial Content", 'ETag: "v1"', `Content-Range: ${rest(V1).range}`], body: Buffer.concat([rest(V1).body, Buffer.alloc(5000, 1)]) }, V1, 'ETag: "v1"');
      await expectFailure(downloadToFile(`${src.url}/v.mp4`, join(dir, "long"), LOCAL as DownloadOptions), "source_invalid", new RegExp(`^the source sent more than it announced \\(Content-Range: bytes ${CUT}-${SIZE - 1}/${SIZE}\\); nothing of it is kept$`));
      expect(src.seen.length).toBe(2);
      expect(await leftovers()).toEqual([]);
    });
  });

  describe("Content-Encoding", () => {
    for (const [coding, encode] of [
      ["gzip", (b: Buffer) => zlib.gzipSync(b)],
      ["deflate", (b: Buffer) => zlib.deflateSync(b)],
      ["br", (b: Buffer) => zlib.brotliCompressSync(b)],
      ["zstd", (b: Buffer) => zlib.zstdCompressSync(b)],
    ] as const) {
      test(`a ${coding} body (sent though identity was asked) is stored decoded`, async () => {
        const encoded = encode(DATA);
        const src = rawServe(() => ({ head: ["HTTP/1.1 200 OK", `Content-Encoding: ${coding}`, `Content-Length: ${encoded.byteLength}`, "Content-Type: video/mp4"], body: encoded }));
        const dest = join(dir, `enc-${coding}`);
        const progress: { bytes: number; total: number | null }[] = [];
        const result = await downloadToFile(`${src.url}/v.mp4`, dest, { ...LOCAL, onProgress: (p) => progress.push(p), progressIntervalMs: 0 } as DownloadOptions);
        expect(result).toMatchObject({ sha256: SHA, size: DATA.length, requests: 1 });
        expect(Buffer.from(await Bun.file(dest).arrayBuffer()).equals(DATA)).toBe(true);
        // The decoded size is not known before the end: no total to show against.
        expect(progress.at(-1)).toEqual({ bytes: DATA.length, total: null });
        await rm(dest);
      });
    }

    test("a small body that inflates past MAX_UPLOAD_BYTES is refused by the decoded count (a zip bomb)", async () => {
      const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024));
      expect(bomb.byteLength).toBeLessThan(200_000);
      const src = rawServe(() => ({ head: ["HTTP/1.1 200 OK", "Content-Encoding: gzip", `Content-Length: ${bomb.byteLength}`], body: bomb }));
      await expectFailure(downloadToFile(`${src.url}/v`, join(dir, "bomb"), { ...LOCAL, maxBytes: 1_000_000 } as DownloadOptions), "too_large", /it sent more than the limit of 1 MB \(MAX_UPLOAD_BYTES\)/);
      expect(await leftovers()).toEqual([]);
    });

    test("a coding not decoded here, or data that does not decompress, fails saying so", async () => {
      const compress = rawServe(() => ({ head: ["HTTP/1.1 200 OK", "Content-Encoding: compress", "Content-Length: 5"], body: Buffer.from("hello") }));
      await expectFailure(downloadToFile(`${compress.url}/v`, join(dir, "c1"), LOCAL as DownloadOptions), "source_invalid", /^the source sent Content-Encoding: compress, which this server does not decode/);
      const corrupt = rawServe(() => ({ head: ["HTTP/1.1 200 OK", "Content-Encoding: gzip", "Content-Length: 18"], body: Buffer.from("this is not gzip!!") }));
      await expectFailure(downloadToFile(`${corrupt.url}/v`, join(dir, "c2"), LOCAL as DownloadOptions), "source_invalid", /^the source's gzip data does not decompress \(/);
      expect(await leftovers()).toEqual([]);
    });

    test("a compressed body that breaks off is downloaded again from the start, not resumed with Range", async () => {
      const encoded = zlib.gzipSync(DATA);
      const src = rawServe((_req, n) => ({
        head: ["HTTP/1.1 200 OK", "Content-Encoding: gzip", "Accept-Ranges: bytes", `ETag: ${ETAG}`, `Content-Length: ${encoded.byteLength}`],
        body: n === 1 ? encoded.subarray(0, encoded.byteLength >> 1) : encoded,
      }));
      const dest = join(dir, "enc-restart");
      const result = await downloadToFile(`${src.url}/v`, dest, LOCAL as DownloadOptions);
      expect(src.seen).toEqual([
        { range: null, ifRange: null },
        { range: null, ifRange: null },
      ]);
      expect(result).toMatchObject({ sha256: SHA, size: DATA.length, requests: 2, resumes: 1 });
      await rm(dest);
    });
  });

  test("a source that sends 1000 bytes and then nothing times out 'without data', not 'slower than'", async () => {
    // The audit's case: IMPORT_IDLE_TIMEOUT_MS=3000, the default 1 kB/s minimum (3072 bytes a window).
    const src = rawServe(() => ({ head: ["HTTP/1.1 200 OK", "Content-Length: 300000"], body: DATA.subarray(0, 1000), then: "hold" }));
    await expectFailure(downloadToFile(`${src.url}/v`, join(dir, "stall"), { ...LOCAL, idleTimeoutMs: 3000, minBytesPerSecond: 1024 } as DownloadOptions), "timeout", /^timed out after 3 s without data \(1 kB received; not resumed/);
    expect(await leftovers()).toEqual([]);
  }, 10_000);

  test("an abort stops the download and removes the file", async () => {
    const stalled = serve(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(DATA.subarray(0, 1000));
            },
          }),
        ),
    );
    const controller = new AbortController();
    const running = downloadToFile(`${stalled.url}/v`, join(dir, "a"), { ...LOCAL, signal: controller.signal } as DownloadOptions);
    setTimeout(() => controller.abort(), 100);
    await expectFailure(running, "aborted", /cancelled/);
    expect(await leftovers()).toEqual([]);
  });
});
