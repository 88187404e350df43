/** /static/...: the same engine as the stream route, confined to STATIC_DIR. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, rename, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { comparableHeaders, get, rawRequest } from "../helpers/http.ts";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { STATIC_SANDBOX_POLICY } from "../../src/modules/static/native.ts";

let spool: TestSpool;
const TEXT = "hello, static world\n";

beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false });
  const root = spool.staticDir;
  const outside = dirname(root);
  await writeFile(join(outside, "secret.txt"), "TOP SECRET");
  await writeFile(join(root, "hello.txt"), TEXT);
  await mkdir(join(root, "sub dir"), { recursive: true });
  await writeFile(join(root, "sub dir", "clip.mp4"), Buffer.from("0123456789"));
  await writeFile(join(root, ".env"), "SECRET=1");
  await symlink(join(outside, "secret.txt"), join(root, "link-out"));
  await symlink(join(root, "hello.txt"), join(root, "link-in.txt"));
  await mkdir(join(root, "dir"));
});
afterAll(() => spool?.stop());

describe("serving", () => {
  test("200 with type, length and validators", async () => {
    const r = await fetch(`${spool.url}/static/hello.txt`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe(TEXT);
    expect(r.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(r.headers.get("content-length")).toBe(String(TEXT.length));
    expect(r.headers.get("etag")).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(r.headers.get("last-modified")).not.toBeNull();
    expect(r.headers.get("accept-ranges")).toBe("bytes");
  });

  test("ranges, percent-encoded names and media types", async () => {
    const r = await fetch(`${spool.url}/static/sub%20dir/clip.mp4`, { headers: { range: "bytes=2-4" } });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-type")).toBe("video/mp4");
    expect(r.headers.get("content-range")).toBe("bytes 2-4/10");
    expect(await r.text()).toBe("234");
  });

  test("304 on revalidation, HEAD like GET", async () => {
    const first = await fetch(`${spool.url}/static/hello.txt`, { method: "HEAD" });
    const etag = first.headers.get("etag")!;
    expect((await fetch(`${spool.url}/static/hello.txt`, { headers: { "if-none-match": etag } })).status).toBe(304);
    const getR = await fetch(`${spool.url}/static/hello.txt`, { headers: { range: "bytes=0-4" } });
    const headR = await fetch(`${spool.url}/static/hello.txt`, { headers: { range: "bytes=0-4" }, method: "HEAD" });
    await getR.arrayBuffer();
    expect(comparableHeaders(headR)).toEqual(comparableHeaders(getR));
  });

  test("whatever the Host: a short one (a compose service named `web`), or none (HTTP/1.0)", async () => {
    for (const host of ["Host: web\r\n", "Host: x\r\n", "Host: a.example:8080\r\n"]) {
      const r = await rawRequest(spool.port, `GET /static/hello.txt HTTP/1.1\r\n${host}Connection: close\r\n\r\n`);
      expect({ host, status: r.status, body: r.body.toString() }).toEqual({ host, status: 200, body: TEXT });
      expect(r.headers["x-request-id"]).toBeDefined();
    }
    const old = await rawRequest(spool.port, "GET /static/sub%20dir/clip.mp4 HTTP/1.0\r\n\r\n");
    expect(old.status).toBe(200);
    expect(old.body.toString()).toBe("0123456789");
    // Other methods: 405 with what is allowed, in Spool's JSON.
    const post = await rawRequest(spool.port, "POST /static/hello.txt HTTP/1.1\r\nHost: web\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe("GET, HEAD");
    expect(JSON.parse(post.body.toString()).error.code).toBe("method_not_allowed");
  });

  test("HEAD answers as GET would, without reading the file: its length for multipart and none on a 304", async () => {
    const big = join(spool.staticDir, "big.bin");
    await writeFile(big, Buffer.alloc(64 * 1024 * 1024, 7));
    const ranges = { range: "bytes=0-1,200-201,-2" };
    const getR = await fetch(`${spool.url}/static/big.bin`, { headers: ranges });
    const body = await getR.arrayBuffer();
    const headR = await fetch(`${spool.url}/static/big.bin`, { method: "HEAD", headers: ranges });
    expect(headR.status).toBe(206);
    expect(headR.headers.get("content-length")).toBe(String(body.byteLength));
    const etag = headR.headers.get("etag")!;
    const notModified = await fetch(`${spool.url}/static/big.bin`, { method: "HEAD", headers: { "if-none-match": etag } });
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get("content-length")).toBeNull();
    const whole = await fetch(`${spool.url}/static/big.bin`, { method: "HEAD" });
    expect(whole.headers.get("content-length")).toBe(String(64 * 1024 * 1024));
  });

  test("an empty file: a Range gets the whole (empty) file, not Bun's own 416", async () => {
    await writeFile(join(spool.staticDir, "empty.txt"), "");
    for (const range of ["bytes=0-0", "bytes=0-", "bytes=-5"]) {
      const r = await fetch(`${spool.url}/static/empty.txt`, { headers: { range } });
      expect({ range, status: r.status, length: r.headers.get("content-length"), body: await r.text() }).toEqual({ range, status: 200, length: "0", body: "" });
      expect(r.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    }
  });

  test("a file dated in the future is sent as last modified now (§8.8.2.1), so revalidation works", async () => {
    const path = join(spool.staticDir, "future.txt");
    await writeFile(path, "from the future");
    const future = new Date("2030-01-01T00:00:00Z");
    await utimes(path, future, future);
    const r = await fetch(`${spool.url}/static/future.txt`);
    const lastModified = Date.parse(r.headers.get("last-modified")!);
    // Now, not 2030 (compared with this clock: Bun's own Date header may lag by a second).
    expect(lastModified).toBeLessThanOrEqual(Date.now());
    expect(lastModified).toBeGreaterThan(Date.now() - 60_000);
    const again = await fetch(`${spool.url}/static/future.txt`, { headers: { "if-modified-since": r.headers.get("last-modified")! } });
    expect(again.status).toBe(304);
  });

  test("a symlink that stays inside the root is served", async () => {
    expect(await (await fetch(`${spool.url}/static/link-in.txt`)).text()).toBe(TEXT);
  });

  test("a file changed on disk is seen after the cache window", async () => {
    await writeFile(join(spool.staticDir, "changing.txt"), "one");
    expect(await (await fetch(`${spool.url}/static/changing.txt`)).text()).toBe("one");
    await Bun.sleep(1100);
    await writeFile(join(spool.staticDir, "changing.txt"), "two!");
    await Bun.sleep(1100);
    const r = await fetch(`${spool.url}/static/changing.txt`);
    expect(await r.text()).toBe("two!");
    expect(r.headers.get("content-length")).toBe("4");
  });
});

describe("confinement: every escape is a 404 and never the secret", () => {
  test.each([
    "/static/../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/..%2fsecret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/%252e%252e%252fsecret.txt",
    "/static/sub%20dir/../../secret.txt",
    "/static/sub%20dir/%2e%2e/%2e%2e/secret.txt",
    "/static/..%5csecret.txt",
    "/static/hello.txt%00.jpg",
    "/static/link-out",
    "/static/.env",
    "/static/%2eenv",
    "/static/dir",
    "/static/",
    "/static/%zz",
    "/static//etc/passwd",
  ])("%s", async (path) => {
    const r = await get(spool.port, path);
    expect(r.status).toBe(404);
    expect(r.body.toString()).not.toContain("TOP SECRET");
    expect(r.body.toString()).not.toContain("SECRET=1");
    expect(JSON.parse(r.body.toString()).error.code).toBe("not_found");
  });
});

describe("documents that can run script are sandboxed (STATIC_SANDBOX)", () => {
  const NAMES = ["page.html", "page.htm", "icon.svg", "feed.xml", "stream.mpd", "notes.txt", "script.js", "style.css", "data.json", "doc.pdf", "video.mp4"].map((name) => `sandbox-${name}`);
  const SANDBOXED = ["page.html", "page.htm", "icon.svg", "feed.xml", "stream.mpd"].map((name) => `sandbox-${name}`);

  test("HTML, SVG and any XML get the sandbox policy, on 200, 206 and 304 alike; scripts, styles, data and media do not", async () => {
    for (const name of NAMES) await writeFile(join(spool.staticDir, name), "<x/>");
    for (const name of NAMES) {
      const expected = SANDBOXED.includes(name) ? STATIC_SANDBOX_POLICY : null;
      const full = await fetch(`${spool.url}/static/${name}`);
      await full.arrayBuffer();
      const ranged = await fetch(`${spool.url}/static/${name}`, { headers: { range: "bytes=0-1" } });
      await ranged.arrayBuffer();
      const revalidated = await fetch(`${spool.url}/static/${name}`, { headers: { "if-none-match": full.headers.get("etag")! } });
      expect({ name, statuses: [full.status, ranged.status, revalidated.status], policies: [full, ranged, revalidated].map((r) => r.headers.get("content-security-policy")) }).toEqual({
        name,
        statuses: [200, 206, 304],
        policies: [expected, expected, expected],
      });
    }
  });

  test("STATIC_SANDBOX=0 serves them as ordinary pages", async () => {
    const other = await startTestSpool({ seedDemo: false, staticSandbox: false });
    try {
      await writeFile(join(other.staticDir, "page.html"), "<p>hi</p>");
      const r = await fetch(`${other.url}/static/page.html`);
      expect(await r.text()).toBe("<p>hi</p>");
      expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(r.headers.get("content-security-policy")).toBeNull();
    } finally {
      await other.stop();
    }
  });
});

test("a STATIC_DIR that reaches DATA_DIR through a symlink serves nothing of the library's own", async () => {
  // Names that do not overlap (config.ts refuses those at start), a real path that does: STATIC_DIR
  // is a link to DATA_DIR's parent.
  const parent = await mkdtemp(join(tmpdir(), "spool-static-link-"));
  await mkdir(join(parent, "data"));
  await writeFile(join(parent, "data", "secret.txt"), "TOP SECRET");
  await writeFile(join(parent, "page.txt"), "public page");
  const site = join(parent, "site");
  await symlink(parent, site);
  const other = await startTestSpool({ seedDemo: false, staticDir: site, dataDir: join(parent, "data") });
  try {
    expect(await (await fetch(`${other.url}/static/page.txt`)).text()).toBe("public page");
    const library = ["data/secret.txt", "data", ...(await readdir(join(parent, "data"))).map((name) => `data/${encodeURIComponent(name)}`), "site/data/secret.txt"];
    // Spool's own files are there (its database with SQLite, its media directory), and none is served.
    expect(library.length).toBeGreaterThan(3);
    for (const path of library) {
      const r = await fetch(`${other.url}/static/${path}`);
      expect({ path, status: r.status }).toEqual({ path, status: 404 });
      expect(await r.text()).not.toContain("TOP SECRET");
    }
  } finally {
    await other.stop();
    await rm(parent, { recursive: true, force: true });
  }
});

test("a STATIC_DIR symlink re-pointed to a new release is followed after the cache window", async () => {
  const base = join(dirname(spool.staticDir), "releases");
  for (const v of ["v1", "v2"]) {
    await mkdir(join(base, v), { recursive: true });
    await writeFile(join(base, v, "app.txt"), `release ${v}`);
  }
  const current = join(base, "current");
  await symlink(join(base, "v1"), current);
  const other = await startTestSpool({ seedDemo: false, staticDir: current, cacheTtlMs: 100 });
  try {
    expect(await (await fetch(`${other.url}/static/app.txt`)).text()).toBe("release v1");
    // The usual atomic deploy: a new link renamed over the old one.
    await symlink(join(base, "v2"), `${current}.new`);
    await rename(`${current}.new`, current);
    await Bun.sleep(250);
    expect(await (await fetch(`${other.url}/static/app.txt`)).text()).toBe("release v2");
  } finally {
    await other.stop();
  }
});

describe("a file rewritten in place is never served stale", () => {
  // The RAM tier keys bytes on path + ETag, and the file cache keeps an entity while its tag is
  // unchanged: a tag of whole-second mtime and size served the old bytes forever after a
  // same-size rewrite within the second, or with the mtime pinned (cp -p, reproducible builds).
  test("same size, same (pinned) mtime: new bytes and a new ETag after the cache window", async () => {
    const path = join(spool.staticDir, "pinned.txt");
    const pinned = new Date("2024-05-01T12:00:00Z");
    await writeFile(path, "version-1\n");
    await utimes(path, pinned, pinned);
    let before = "";
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${spool.url}/static/pinned.txt`);
      expect(await r.text()).toBe("version-1\n");
      before = r.headers.get("etag")!;
    }
    await Bun.sleep(50); // let the RAM tier's background fill land
    await writeFile(path, "version-2\n");
    await utimes(path, pinned, pinned);
    await Bun.sleep(1100);
    const r = await fetch(`${spool.url}/static/pinned.txt`);
    expect(await r.text()).toBe("version-2\n");
    expect(r.headers.get("etag")).not.toBe(before);
    // A client holding the old tag gets the new bytes, not a 304.
    expect((await fetch(`${spool.url}/static/pinned.txt`, { headers: { "if-none-match": before } })).status).toBe(200);
  });

  test("an unchanged file keeps its ETag across cache windows and restarts", async () => {
    const first = (await fetch(`${spool.url}/static/hello.txt`, { method: "HEAD" })).headers.get("etag");
    await Bun.sleep(1100);
    expect((await fetch(`${spool.url}/static/hello.txt`, { method: "HEAD" })).headers.get("etag")).toBe(first);
    const other = await startTestSpool({ seedDemo: false, staticDir: spool.staticDir });
    try {
      expect((await fetch(`${other.url}/static/hello.txt`, { method: "HEAD" })).headers.get("etag")).toBe(first);
    } finally {
      await other.stop();
    }
  });
});

describe("symlinks: the URL names the type, the real path must be visible", () => {
  test("Content-Type comes from the URL's last segment, not the link's target (as nginx)", async () => {
    await mkdir(join(spool.staticDir, "build"), { recursive: true });
    await writeFile(join(spool.staticDir, "build", "app-3f2a"), "console.log(1);\n");
    await symlink(join(spool.staticDir, "build", "app-3f2a"), join(spool.staticDir, "app.js"));
    const r = await fetch(`${spool.url}/static/app.js`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    // The target's own URL still has no type to give.
    expect((await fetch(`${spool.url}/static/build/app-3f2a`)).headers.get("content-type")).toBe("application/octet-stream");
    // A percent-encoded name is typed once decoded.
    await symlink(join(spool.staticDir, "build", "app-3f2a"), join(spool.staticDir, "my app.js"));
    expect((await fetch(`${spool.url}/static/my%20app.js`)).headers.get("content-type")).toBe("text/javascript; charset=utf-8");
  });

  test.each([
    ["a link to a dotfile", "link-dot.txt"],
    ["a file in a dot directory, through a link to the directory", "secretdir/x.txt"],
  ])("%s is a 404", async (_name, path) => {
    const root = spool.staticDir;
    await mkdir(join(root, ".hidden"), { recursive: true });
    await writeFile(join(root, ".hidden", "x.txt"), "SECRET=1");
    await symlink(join(root, ".env"), join(root, "link-dot.txt")).catch(() => {});
    await symlink(join(root, ".hidden"), join(root, "secretdir")).catch(() => {});
    const r = await get(spool.port, `/static/${path}`);
    expect(r.status).toBe(404);
    expect(r.body.toString()).not.toContain("SECRET=1");
    expect(JSON.parse(r.body.toString()).error.code).toBe("not_found");
  });

  test("a link inside the root whose own name is visible is still served", async () => {
    await mkdir(join(spool.staticDir, "assets"), { recursive: true });
    await symlink(join(spool.staticDir, "hello.txt"), join(spool.staticDir, "assets", "greeting.txt"));
    expect(await (await fetch(`${spool.url}/static/assets/greeting.txt`)).text()).toBe(TEXT);
  });
});

test("a path too long to be a file is a JSON 404, like any other miss", async () => {
  const r = await get(spool.port, `/static/${"a".repeat(15_000)}1`);
  expect(r.status).toBe(404);
  expect(JSON.parse(r.body.toString()).error).toEqual({ code: "not_found", message: "No such file" });
});
