/**
 * GET/HEAD /api/stream/:id against a real Spool over real HTTP: exact bytes and exact headers
 * for every range form, preconditions in RFC order, and the error cases. The cases are a
 * function so that each variant file registers them with its own servers: stream.test.ts (the
 * storage the suite runs on), stream-s3.test.ts (STORAGE=s3).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { comparableHeaders, parseMultipart } from "../helpers/http.ts";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";

const FIXTURE = resolve(import.meta.dir, "../../fixtures/demo.mp4");
const bytes = readFileSync(FIXTURE);
const SIZE = bytes.length;

/** Registers the conformance cases in the calling test file. */
export function streamConformance(): void {
  let spool: TestSpool;
  let url: string;

  beforeAll(async () => {
    spool = await startTestSpool();
    url = `${spool.url}/api/stream/demo`;
  });
  afterAll(() => spool?.stop());

  const fetchStream = (headers: Record<string, string> = {}, method = "GET", target = url) => fetch(target, { headers, method });
  const body = async (r: Response) => Buffer.from(await r.arrayBuffer());

  async function expectJsonError(r: Response, status: number, code: string) {
    expect(r.status).toBe(status);
    expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const json = (await r.json()) as { error: { code: string; message: string } };
    expect(Object.keys(json)).toEqual(["error"]);
    expect(json.error.code).toBe(code);
    expect(typeof json.error.message).toBe("string");
    expect(json.error.message).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
  }

  describe("full responses", () => {
    test("200 with the exact file and media headers", async () => {
      const r = await fetchStream({ "accept-encoding": "gzip, br, zstd" });
      expect(r.status).toBe(200);
      expect(await body(r)).toEqual(bytes);
      expect(r.headers.get("content-length")).toBe(String(SIZE));
      expect(r.headers.get("content-type")).toBe("video/mp4");
      expect(r.headers.get("accept-ranges")).toBe("bytes");
      expect(r.headers.get("etag")).toMatch(/^"[0-9a-f]{32}"$/);
      expect(new Date(r.headers.get("last-modified")!).toUTCString()).toBe(r.headers.get("last-modified")!);
      expect(r.headers.get("cache-control")).toBe("public, max-age=86400");
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
      expect(r.headers.get("content-disposition")).toBe("inline");
      expect(r.headers.get("content-encoding")).toBeNull();
      expect(r.headers.get("content-range")).toBeNull();
    });

    test("ETag is the content hash: same across restarts and across servers", async () => {
      const first = (await fetchStream({}, "HEAD")).headers.get("etag");
      // Restart on the same data directory.
      await spool.stop().catch(() => {});
      spool = await startTestSpool();
      url = `${spool.url}/api/stream/demo`;
      const other = await startTestSpool();
      try {
        const again = (await fetchStream({}, "HEAD")).headers.get("etag");
        const elsewhere = (await fetch(`${other.url}/api/stream/demo`, { method: "HEAD" })).headers.get("etag");
        expect(again).toBe(first!);
        expect(elsewhere).toBe(first!);
      } finally {
        await other.stop();
      }
    });
  });

  describe("single ranges", () => {
    const cases: [string, number, number][] = [
      ["bytes=0-1", 0, 1], // Safari's probe
      ["bytes=0-", 0, SIZE - 1], // Chrome's first request
      ["bytes=100-199", 100, 199],
      ["bytes=1000-", 1000, SIZE - 1],
      ["bytes=-500", SIZE - 500, SIZE - 1],
      [`bytes=-${SIZE * 4}`, 0, SIZE - 1],
      [`bytes=${SIZE - 10}-${SIZE * 10}`, SIZE - 10, SIZE - 1],
      [`bytes=${SIZE - 1}-${SIZE - 1}`, SIZE - 1, SIZE - 1],
      ["bytes=5-99999999999999999999", 5, SIZE - 1],
      ["bytes=0-0,1-1", 0, 1], // adjacent ranges coalesce into one part
      // Canonical single ranges above are sent by Bun's own range code; these spellings of the
      // same ranges go through Spool's slice() path. Both must give the same answer.
      ["Bytes=100-199", 100, 199],
      ["bytes= 100-199", 100, 199],
      ["bytes=100-199,", 100, 199],
      ["bytes=0000000000000000100-199", 100, 199],
    ];
    test.each(cases)("%s", async (range, start, end) => {
      const r = await fetchStream({ range });
      expect(r.status).toBe(206);
      expect(r.headers.get("content-range")).toBe(`bytes ${start}-${end}/${SIZE}`);
      expect(r.headers.get("content-length")).toBe(String(end - start + 1));
      expect(r.headers.get("content-type")).toBe("video/mp4");
      expect(r.headers.get("accept-ranges")).toBe("bytes");
      expect(r.headers.get("etag")).toMatch(/^"/);
      expect(await body(r)).toEqual(bytes.subarray(start, end + 1));
    });
  });

  describe("unsatisfiable and ignored ranges", () => {
    test.each([`bytes=${SIZE}-`, `bytes=${SIZE + 5}-${SIZE + 10}`, "bytes=-0", "bytes=99999999999999999999-"])("416 for %s", async (range) => {
      const r = await fetchStream({ range });
      expect(r.headers.get("content-range")).toBe(`bytes */${SIZE}`);
      await expectJsonError(r, 416, "range_not_satisfiable");
    });

    test.each(["items=0-5", "bytes=5-1", "bytes=abc", "bytes 0-5", "bytes=0-1,x"])("%s is ignored: the whole file, 200", async (range) => {
      const r = await fetchStream({ range });
      expect(r.status).toBe(200);
      expect(r.headers.get("content-range")).toBeNull();
      expect(await body(r)).toEqual(bytes);
    });

    test("more than 64 ranges is refused", async () => {
      const range = `bytes=${Array.from({ length: 65 }, (_, i) => `${i * 1000}-${i * 1000}`).join(",")}`;
      await expectJsonError(await fetchStream({ range }), 416, "range_not_satisfiable");
    });
  });

  describe("multipart/byteranges", () => {
    test("each part has its own Content-Type, Content-Range and exact bytes, in request order", async () => {
      const r = await fetchStream({ range: `bytes=1000-1099,0-9,-10` });
      expect(r.status).toBe(206);
      const type = r.headers.get("content-type")!;
      const match = /^multipart\/byteranges; boundary=(\S+)$/.exec(type);
      expect(match).not.toBeNull();
      expect(r.headers.get("content-range")).toBeNull();
      const parts = parseMultipart(await body(r), match![1]!);
      const expected: [number, number][] = [
        [1000, 1099],
        [0, 9],
        [SIZE - 10, SIZE - 1],
      ];
      expect(parts.length).toBe(3);
      parts.forEach((part, i) => {
        const [start, end] = expected[i]!;
        expect(part.headers["content-type"]).toBe("video/mp4");
        expect(part.headers["content-range"]).toBe(`bytes ${start}-${end}/${SIZE}`);
        expect(part.body).toEqual(bytes.subarray(start, end + 1));
      });
    });

    test("overlapping ranges cannot amplify the response (CVE-2011-3192)", async () => {
      const range = `bytes=${Array.from({ length: 64 }, (_, i) => `${i}-${SIZE - 1}`).join(",")}`;
      const r = await fetchStream({ range });
      expect(r.status).toBe(206);
      expect(r.headers.get("content-range")).toBe(`bytes 0-${SIZE - 1}/${SIZE}`);
      expect((await body(r)).length).toBe(SIZE);
    });
  });

  describe("preconditions", () => {
    let etag: string;
    let lastModified: string;
    beforeAll(async () => {
      const r = await fetchStream({}, "HEAD");
      etag = r.headers.get("etag")!;
      lastModified = r.headers.get("last-modified")!;
    });
    const earlier = () => new Date(Date.parse(lastModified) - 60_000).toUTCString();

    test.each([
      ["If-None-Match: current", () => ({ "if-none-match": etag })],
      ["If-None-Match: weak form", () => ({ "if-none-match": `W/${etag}` })],
      ["If-None-Match: *", () => ({ "if-none-match": "*" })],
      ["If-None-Match: list", () => ({ "if-none-match": `"nope", ${etag}` })],
      ["If-Modified-Since: exact", () => ({ "if-modified-since": lastModified })],
      ["If-None-Match wins over Range", () => ({ "if-none-match": etag, range: "bytes=0-1" })],
    ] as [string, () => Record<string, string>][])("304 for %s, with ETag, Cache-Control and no body", async (_n, headers) => {
      const r = await fetchStream(headers());
      expect(r.status).toBe(304);
      expect(r.headers.get("etag")).toBe(etag);
      // RFC 9110 §15.4.5: with an ETag present, Last-Modified is not repeated (as in Go's ServeContent).
      expect(r.headers.get("last-modified")).toBeNull();
      expect(r.headers.get("content-type")).toBeNull();
      expect(r.headers.get("cache-control")).toBe("public, max-age=86400");
      expect(r.headers.get("content-range")).toBeNull();
      expect((await body(r)).length).toBe(0);
    });

    test("If-Modified-Since is ignored when If-None-Match is present", async () => {
      const r = await fetchStream({ "if-none-match": '"other"', "if-modified-since": lastModified });
      expect(r.status).toBe(200);
    });

    test("If-Modified-Since earlier than Last-Modified: 200", async () => {
      expect((await fetchStream({ "if-modified-since": earlier() })).status).toBe(200);
    });

    test.each([
      ["If-Match: other", () => ({ "if-match": '"other"' })],
      ["If-Match: weak current", () => ({ "if-match": `W/${etag}` })],
      ["If-Unmodified-Since: earlier", () => ({ "if-unmodified-since": earlier() })],
      ["If-Match beats If-None-Match", () => ({ "if-match": '"other"', "if-none-match": etag })],
    ] as [string, () => Record<string, string>][])("412 for %s", async (_n, headers) => {
      await expectJsonError(await fetchStream(headers()), 412, "precondition_failed");
    });

    test("If-Match: current and * proceed", async () => {
      expect((await fetchStream({ "if-match": etag, range: "bytes=0-1" })).status).toBe(206);
      expect((await fetchStream({ "if-match": "*" })).status).toBe(200);
    });

    test.each([
      ["current strong ETag", () => etag, 206],
      ["exact Last-Modified date", () => lastModified, 206],
      ["another ETag", () => '"stale"', 200],
      ["weak form of the current ETag", () => `W/${etag}`, 200],
      ["an earlier date", () => earlier(), 200],
    ] as [string, () => string, number][])("If-Range with %s → %d", async (_n, value, status) => {
      // A date validates only once it is a second old (§13.1.5, §8.8.2.2): a video made just now waits.
      const strongAt = Date.parse(lastModified) + 1000;
      if (Date.now() < strongAt) await Bun.sleep(strongAt - Date.now() + 10);
      const r = await fetchStream({ range: "bytes=10-19", "if-range": value() });
      expect(r.status).toBe(status);
      const got = await body(r);
      if (status === 206) expect(got).toEqual(bytes.subarray(10, 20));
      else {
        expect(r.headers.get("content-range")).toBeNull();
        expect(got).toEqual(bytes);
      }
    });
  });

  describe("HEAD answers the headers GET would", () => {
    test.each([
      ["no range", {}],
      ["bytes=0-1", { range: "bytes=0-1" }],
      ["bytes=-100", { range: "bytes=-100" }],
      ["416", { range: `bytes=${SIZE}-` }],
      ["download", {}, "?download=1"],
    ] as [string, Record<string, string>, string?][])("%s", async (_n, headers, query = "") => {
      const get = await fetchStream(headers, "GET", url + query);
      const head = await fetchStream(headers, "HEAD", url + query);
      const getBody = await body(get);
      expect(head.status).toBe(get.status);
      expect(comparableHeaders(head)).toEqual(comparableHeaders(get));
      expect((await body(head)).length).toBe(0);
      if (get.status !== 416) expect(Number(head.headers.get("content-length"))).toBe(getBody.length);
    });

    test("304 and 412 too", async () => {
      const etag = (await fetchStream({}, "HEAD")).headers.get("etag")!;
      for (const headers of [{ "if-none-match": etag }, { "if-match": '"x"' }] as Record<string, string>[]) {
        const get = await fetchStream(headers);
        const head = await fetchStream(headers, "HEAD");
        expect(head.status).toBe(get.status);
        expect(comparableHeaders(head)).toEqual(comparableHeaders(get));
      }
    });
  });

  describe("downloads", () => {
    test("?download=1 names the title, with an RFC 5987 filename* for non-ASCII", async () => {
      const row = await spool.ctx.ingest.ingestPath(FIXTURE, { title: "Café 日本", originalFilename: "x.mp4" });
      const r = await fetch(`${spool.url}/api/stream/${row.id}?download=1`, { headers: { range: "bytes=0-1" } });
      expect(r.status).toBe(206);
      expect(r.headers.get("content-disposition")).toBe(`attachment; filename="Cafe __.mp4"; filename*=UTF-8''Caf%C3%A9%20%E6%97%A5%E6%9C%AC.mp4`);
      const inline = await fetch(`${spool.url}/api/stream/${row.id}`, { method: "HEAD" });
      expect(inline.headers.get("content-disposition")).toBe("inline");
      expect(inline.headers.get("etag")).toBe(r.headers.get("etag")!); // same bytes, same tag
      // Revalidating a download: the same 304 as inline, with no disposition; 412 likewise.
      const etag = inline.headers.get("etag")!;
      for (const query of ["?download=1", ""]) {
        const notModified = await fetch(`${spool.url}/api/stream/${row.id}${query}`, { headers: { "if-none-match": etag } });
        expect(notModified.status).toBe(304);
        expect(comparableHeaders(notModified)).toEqual({ etag, "cache-control": "public, max-age=86400", "access-control-allow-origin": "*", "access-control-expose-headers": "Content-Range, Content-Length, Accept-Ranges, ETag" });
        expect((await fetch(`${spool.url}/api/stream/${row.id}${query}`, { headers: { "if-match": '"other"' } })).status).toBe(412);
      }
      const whole = await fetch(`${spool.url}/api/stream/${row.id}?download=true`, { headers: { "if-none-match": '"other"' } });
      expect(whole.status).toBe(200);
      expect(whole.headers.get("content-disposition")).toStartWith("attachment;");
    });
  });

  describe("errors", () => {
    test("unknown id: 404 JSON", async () => {
      await expectJsonError(await fetch(`${spool.url}/api/stream/AAAAAAAAAAAAAAAAAAAAAA`), 404, "not_found");
    });

    test("malformed id: 404 JSON (it names no ready video)", async () => {
      await expectJsonError(await fetch(`${spool.url}/api/stream/${encodeURIComponent("no such id!")}`), 404, "not_found");
    });

    test("a video that is not ready: 404", async () => {
      const row = await spool.ctx.library.begin({ originalFilename: "pending.mp4", title: "pending" });
      await expectJsonError(await fetch(`${spool.url}/api/stream/${row.id}`), 404, "not_found");
    });

    test("a ready row whose file vanished: 404, and the server keeps serving", async () => {
      const row = await spool.ctx.ingest.ingestPath(FIXTURE, { title: "doomed", originalFilename: "doomed.mp4" });
      // The file under DATA_DIR, or the object in the bucket (stream-s3.test.ts).
      await spool.ctx.store.delete(row.storagePath);
      await expectJsonError(await fetch(`${spool.url}/api/stream/${row.id}`), 404, "not_found");
      expect((await fetchStream({ range: "bytes=0-1" })).status).toBe(206);
    });

    test("a file that vanishes while its metadata is cached: 404 JSON, not Bun's error page", async () => {
      const row = await spool.ctx.ingest.ingestPath(FIXTURE, { title: "cached", originalFilename: "cached.mp4" });
      const target = `${spool.url}/api/stream/${row.id}`;
      expect((await fetch(target, { headers: { range: "bytes=0-1" } })).status).toBe(206);
      await spool.ctx.store.delete(row.storagePath);
      if (spool.ctx.objects) {
        // From a bucket, the blocks already cached are the bytes of that content hash, and keep
        // being served; the first uncached byte would be a 404.
        const again = await fetch(target, { headers: { range: "bytes=0-1" } });
        expect(again.status).toBe(206);
        expect(await body(again)).toEqual(bytes.subarray(0, 2));
        return;
      }
      // The whole file goes out by sendfile, which finds the file gone and drops the cached entry.
      // (A probe first could be answered from the RAM tier: the bytes of its tag, still exact,
      // until the entry's CACHE_TTL_MS runs out.)
      await expectJsonError(await fetch(target), 404, "not_found");
      await expectJsonError(await fetch(target, { headers: { range: "bytes=0-1" } }), 404, "not_found");
      expect((await fetchStream({ range: "bytes=0-1" })).status).toBe(206);
    });

    test("unknown routes: JSON 404; other methods on a stream: JSON 405 with Allow", async () => {
      await expectJsonError(await fetch(`${spool.url}/nope`), 404, "not_found");
      for (const method of ["DELETE", "POST", "PUT"]) {
        const r = await fetch(url, { method });
        expect(r.headers.get("allow")).toBe("GET, HEAD, OPTIONS");
        await expectJsonError(r, 405, "method_not_allowed");
      }
    });
  });

  describe("aborted clients", () => {
    test("a client that disconnects mid-body does not disturb the next requests", async () => {
      // A static file large enough that the server is still sending when the client leaves.
      const big = Buffer.alloc(8 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
      await Bun.write(`${spool.staticDir}/big.bin`, big);
      const { connect } = await import("node:net");
      for (const path of ["/static/big.bin", "/api/stream/demo"]) {
        for (let i = 0; i < 5; i++) {
          await new Promise<void>((done) => {
            const socket = connect(spool.port, "127.0.0.1", () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
            socket.once("data", () => {
              socket.destroy();
              done();
            });
          });
        }
      }
      const r = await fetch(`${spool.url}/static/big.bin`, { headers: { range: "bytes=4000000-4000007" } });
      expect(r.status).toBe(206);
      expect(await body(r)).toEqual(big.subarray(4000000, 4000008));
      expect(await body(await fetchStream({ range: "bytes=100-109" }))).toEqual(bytes.subarray(100, 110));
    });
  });

  describe("CORS (default policy *)", () => {
    const EXPOSED = "Content-Range, Content-Length, Accept-Ranges, ETag";
    test.each([
      ["200", {}],
      ["206", { range: "bytes=0-1" }],
      ["416", { range: `bytes=${SIZE}-` }],
      ["304", { "if-none-match": "*" }],
    ] as [string, Record<string, string>][])("%s answers are readable cross-origin", async (_n, headers) => {
      const r = await fetchStream({ origin: "https://player.example", ...headers });
      await r.arrayBuffer();
      expect(r.headers.get("access-control-allow-origin")).toBe("*");
      expect(r.headers.get("access-control-expose-headers")).toBe(EXPOSED);
    });

    test("errors (404, 400) carry CORS too", async () => {
      for (const path of ["/api/stream/AAAAAAAAAAAAAAAAAAAAAA", "/api/stream/bad!id"]) {
        const r = await fetch(spool.url + path, { headers: { origin: "https://player.example" } });
        expect([400, 404]).toContain(r.status);
        expect(r.headers.get("access-control-allow-origin")).toBe("*");
      }
    });

    test("preflight for a ranged request", async () => {
      const r = await fetch(url, {
        method: "OPTIONS",
        headers: { origin: "https://player.example", "access-control-request-method": "GET", "access-control-request-headers": "range" },
      });
      expect(r.status).toBe(204);
      expect(r.headers.get("access-control-allow-origin")).toBe("*");
      expect(r.headers.get("access-control-allow-methods")).toBe("GET, HEAD, OPTIONS");
      expect(r.headers.get("access-control-allow-headers")!.toLowerCase()).toContain("range");
    });

    test("OPTIONS that is not a preflight: 204 with the methods a stream supports, and no CORS", async () => {
      const r = await fetch(url, { method: "OPTIONS" });
      expect(r.status).toBe(204);
      expect(r.headers.get("allow")).toBe("GET, HEAD, OPTIONS");
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
    });
  });
}
