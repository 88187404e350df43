/** The player's pages and assets over HTTP (their behaviour in a browser is in test/browser/). */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { AUTH, TEST_API_KEY, startTestSpool, type TestSpool } from "../helpers/spool.ts";

let spool: TestSpool;
beforeAll(async () => {
  spool = await startTestSpool({ jobKinds: ["ingest"] });
});
afterAll(() => spool?.stop());

/** Signs in as a browser does (POST /api/session with the key); returns the `Cookie` header to send. */
async function sessionCookie(base: string): Promise<string> {
  const r = await fetch(`${base}/api/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: TEST_API_KEY }) });
  expect(r.status).toBe(204);
  const cookie = r.headers.get("set-cookie")?.match(/^spool_session=[^;]+/)?.[0];
  if (!cookie) throw new Error(`sign-in set no session cookie: ${r.headers.get("set-cookie")}`);
  return cookie;
}

test("GET / lists the library with the upload form, under a strict CSP", async () => {
  const r = await fetch(`${spool.url}/`, { headers: { cookie: await sessionCookie(spool.url) } });
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
  expect(r.headers.get("content-security-policy")).toContain("default-src 'self'");
  expect(r.headers.get("x-frame-options")).toBe("DENY");
  const html = await r.text();
  expect(html).toContain('<form id="upload-form"');
  expect(html).toContain('href="/watch/demo"');
  expect(html).toContain("Spool demo (test pattern)");
  expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/); // no CDN, nothing from elsewhere
});

test("GET /watch/:id embeds the video's JSON safely and loads hls.js from Spool", async () => {
  const renamed = await fetch(`${spool.url}/api/videos/demo`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: "</script><b>x</b>" }) });
  expect(renamed.status).toBe(200);
  const html = await (await fetch(`${spool.url}/watch/demo`)).text();
  expect(html).toContain("<title>&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;</title>");
  const data = html.match(/<script type="application\/json" id="video-data">(.*?)<\/script>/)![1]!;
  expect(JSON.parse(data)).toMatchObject({ id: "demo", title: "</script><b>x</b>" });
  expect(html).toMatch(/<script src="\/assets\/hls\.min\.js\?v=\d+\.\d+\.\d+"><\/script>/);
  expect(html).toContain('poster="/api/videos/demo/thumbnail.jpg"');
});

test("unknown videos get a 404 page", async () => {
  for (const path of ["/watch/AAAAAAAAAAAAAAAAAAAAAA", "/watch/<bad>"]) {
    const r = await fetch(`${spool.url}${path}`);
    expect(r.status).toBe(404);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await r.text()).not.toContain("<bad>");
  }
});

test("assets come through the file engine: hls.js from its package, Spool's own files", async () => {
  const hls = await fetch(`${spool.url}/assets/hls.min.js`);
  expect(hls.status).toBe(200);
  expect(hls.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
  expect(await hls.text()).toContain("hls.js");
  for (const [file, type] of [["player.js", "text/javascript; charset=utf-8"], ["library.js", "text/javascript; charset=utf-8"], ["spool.css", "text/css; charset=utf-8"]]) {
    const r = await fetch(`${spool.url}/assets/${file}`, { headers: { range: "bytes=0-9" } });
    expect([file, r.status, r.headers.get("content-type")]).toEqual([file, 206, type]);
    expect(r.headers.get("etag")).toBeTruthy();
  }
  for (const file of ["pages.ts", "..%2Froutes.ts", "hls.js"]) expect((await fetch(`${spool.url}/assets/${file}`)).status).toBe(404);
});

test("CORS_ORIGINS as a list: listed origins are echoed, others get no CORS headers", async () => {
  const listed = await startTestSpool({ jobKinds: ["ingest"], corsOrigins: ["https://player.example"] });
  try {
    const url = `${listed.url}/api/stream/demo`;
    const ok = await fetch(url, { headers: { origin: "https://player.example", range: "bytes=0-0" } });
    await ok.arrayBuffer();
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://player.example");
    expect(ok.headers.get("vary")).toBe("Origin");
    const other = await fetch(url, { headers: { origin: "https://elsewhere.example", range: "bytes=0-0" } });
    await other.arrayBuffer();
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    expect(other.headers.get("vary")).toBe("Origin");
    const preflight = await fetch(url, { method: "OPTIONS", headers: { origin: "https://elsewhere.example", "access-control-request-method": "GET" } });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
  } finally {
    await listed.stop();
  }
  const off = await startTestSpool({ jobKinds: ["ingest"], corsOrigins: [] });
  try {
    const r = await fetch(`${off.url}/api/stream/demo`, { headers: { origin: "https://player.example", range: "bytes=0-0" } });
    await r.arrayBuffer();
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
  } finally {
    await off.stop();
  }
});
