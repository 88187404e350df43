/**
 * Access control on a real server over HTTP: the API key, sessions and CSRF, the failure limit,
 * signed playback (stream, HEAD, ranges, HLS master → variant → segments, storyboard,
 * thumbnails, the video JSON, the watch page) with minted and self-minted tokens, capability
 * tus URLs and one-time direct uploads. Refusals are checked to change nothing: the database
 * rows and the files under DATA_DIR are compared before and after.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { SignJWT, jwtVerify } from "jose";
import * as tus from "tus-js-client";
import { accessFor } from "../../src/access/policy.ts";
import { loadConfig } from "../../src/load-config.ts";
import { createApp } from "../../src/web.ts";
import { expectError, filesUnder, uploadMultipart, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { allRows } from "../helpers/db.ts";
import { AUTH, TEST_API_KEY, TEST_SIGNING_SECRET, startTestSpool, withCapturedLogs, type TestSpool } from "../helpers/spool.ts";
import { makeSource, readEvents } from "./hls-support.ts";
import { makeAudio } from "../helpers/media.ts";

// Snapshots wait for earlier tests' transcodes to finish (see snapshot()).
setDefaultTimeout(60_000);

let spool: TestSpool;
let source: string;
/** A signed video with its HLS ladder built. */
let signed: VideoJson;
let signedBytes: Uint8Array<ArrayBuffer>;
/** Each wrong-key request comes from its own address (TRUST_PROXY), so the failure limit stays out of the way. */
let addressCounter = 0;
const freshClient = () => ({ "x-forwarded-for": `198.51.100.${++addressCounter % 250}, 10.${addressCounter >> 8}.0.${addressCounter % 250}` });

beforeAll(async () => {
  spool = await startTestSpool({ trustProxy: true });
  source = await makeSource({ seconds: 6, bitrate: 600_000 });
  const created = await uploadMultipart(spool.url, source, { name: "private.mp4", title: "Private one", playback: "signed" });
  expect(created.status).toBe(201);
  const id = ((await created.json()) as VideoJson).id;
  const deadline = Date.now() + 60_000;
  for (;;) {
    signed = (await (await fetch(`${spool.url}/api/videos/${id}`, { headers: AUTH })).json()) as VideoJson;
    if (signed.status === "ready" && ["ready", "failed", "skipped"].includes(signed.hls.status)) break;
    if (Date.now() > deadline) throw new Error(`video still ${signed.status}/${signed.hls.status}`);
    await Bun.sleep(100);
  }
  expect(signed.hls.status).toBe("ready");
  // The stored file, as the library says where it is.
  const row = (await spool.ctx.library.get(id))!;
  signedBytes = new Uint8Array(await Bun.file(spool.ctx.library.absolutePath(row)).arrayBuffer());
  expect(signedBytes.byteLength).toBe(signed.size);
}, 90_000);

afterAll(() => spool?.stop());

/**
 * Everything a refused request must leave alone: every table's rows and every file. Taken once
 * earlier tests' background work (processing, HLS builds) has finished, so only the request
 * under test can change it.
 */
async function snapshot(): Promise<string> {
  for (const deadline = Date.now() + 60_000; ; await Bun.sleep(100)) {
    const busy = (await spool.ctx.jobs.activeCounts()).reduce((n, c) => n + c.n, 0);
    if (busy === 0) break;
    if (Date.now() > deadline) throw new Error("background work did not finish within 60 s");
  }
  const rows = await allRows(spool.ctx.db);
  const files = filesUnder(spool.dataDir).filter((f) => !f.startsWith("spool.db") && !f.startsWith("tmp/") && !f.startsWith("locks/"));
  return JSON.stringify({ rows, files });
}

async function signIn(base = spool.url): Promise<string> {
  const response = await fetch(`${base}/api/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: TEST_API_KEY }) });
  expect(response.status).toBe(204);
  return response.headers.get("set-cookie")!.split(";")[0]!;
}

const selfMinted = (claims: Record<string, unknown>, secret = TEST_SIGNING_SECRET) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(secret));

async function mint(id: string, expiresIn?: number): Promise<{ token: string; expiresAt: string; streamUrl: string; hlsUrl: string; watchUrl: string; thumbnailUrl: string | null }> {
  const response = await fetch(`${spool.url}/api/videos/${id}/tokens`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify(expiresIn === undefined ? {} : { expiresIn }) });
  expect(response.status).toBe(201);
  return response.json() as never;
}

/** Every management request the API has, as a fresh Request each time (bodies are single-use). */
function managementRequests(): { name: string; make: (headers: Record<string, string>) => Request }[] {
  const u = spool.url;
  const json = (method: string, path: string, body: unknown) => (headers: Record<string, string>) =>
    new Request(u + path, { method, headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) });
  const bare = (method: string, path: string, extra: Record<string, string> = {}) => (headers: Record<string, string>) => new Request(u + path, { method, headers: { ...headers, ...extra } });
  return [
    {
      name: "POST /api/videos (multipart)",
      make: (headers) => {
        const form = new FormData();
        form.append("file", Bun.file(source), "x.mp4");
        return new Request(`${u}/api/videos`, { method: "POST", headers, body: form });
      },
    },
    { name: "GET /api/videos", make: bare("GET", "/api/videos") },
    { name: "PATCH /api/videos/demo", make: json("PATCH", "/api/videos/demo", { title: "taken over" }) },
    { name: "PATCH playback", make: json("PATCH", `/api/videos/${signed.id}`, { playback: "public" }) },
    { name: "DELETE /api/videos/demo", make: bare("DELETE", "/api/videos/demo") },
    { name: "POST hls/retry", make: bare("POST", "/api/videos/demo/hls/retry") },
    { name: "POST tokens", make: json("POST", `/api/videos/${signed.id}/tokens`, {}) },
    { name: "GET events", make: bare("GET", "/api/videos/demo/events") },
    { name: "POST /api/uploads (tus)", make: bare("POST", "/api/uploads", { "tus-resumable": "1.0.0", "upload-length": "100" }) },
    { name: "POST /api/uploads/direct", make: json("POST", "/api/uploads/direct", {}) },
    { name: "GET /metrics", make: bare("GET", "/metrics") },
    // The router answers a trailing slash with the same handler.
    { name: "GET /metrics/", make: bare("GET", "/metrics/") },
    { name: "GET /api/videos/", make: bare("GET", "/api/videos/") },
  ];
}

describe("the management API needs the key", () => {
  test("without credentials: 401, WWW-Authenticate: Bearer, the JSON error, and nothing changes", async () => {
    const before = await snapshot();
    for (const { name, make } of managementRequests()) {
      const response = await fetch(make({}));
      expect({ name, status: response.status }).toEqual({ name, status: 401 });
      expect(response.headers.get("www-authenticate")).toBe('Bearer realm="spool"');
      await expectError(response, 401, "unauthorized");
    }
    expect(await snapshot()).toBe(before);
  });

  test("with a wrong key (or a malformed Authorization): 401 invalid_token, and nothing changes", async () => {
    const before = await snapshot();
    for (const { name, make } of managementRequests()) {
      for (const authorization of [`Bearer ${TEST_API_KEY}x`, `Bearer ${TEST_API_KEY.slice(0, -1)}`, `Basic ${btoa(`admin:${TEST_API_KEY}`)}`, TEST_API_KEY]) {
        const response = await fetch(make({ authorization, ...freshClient() }));
        expect({ name, authorization, status: response.status }).toEqual({ name, authorization, status: 401 });
        expect(response.headers.get("www-authenticate")).toBe('Bearer realm="spool", error="invalid_token"');
        await expectError(response, 401, "unauthorized");
      }
    }
    expect(await snapshot()).toBe(before);
  });

  test("with a session cookie from another site's page: 403 cross_origin_request for every mutation, and nothing changes", async () => {
    const cookie = await signIn();
    const before = await snapshot();
    for (const { name, make } of managementRequests()) {
      const request = make({ cookie, origin: "https://evil.example" });
      const response = await fetch(request);
      const expected = request.method === "GET" ? 200 : 403;
      expect({ name, status: response.status }).toEqual({ name, status: expected });
      if (expected === 403) await expectError(response, 403, "cross_origin_request");
      else await response.body?.cancel();
    }
    // A cookie on a mutation with no Origin, Referer or Sec-Fetch-Site at all is not from a page either.
    await expectError(await fetch(`${spool.url}/api/videos/demo`, { method: "DELETE", headers: { cookie } }), 403, "cross_origin_request");
    expect(await snapshot()).toBe(before);
  });

  test("every route the app registers is classified, and the open ones are exactly the expected set", () => {
    const app = createApp(spool.ctx);
    const open = new Set<string>();
    for (const route of app.routes) {
      const example = route.path.replace(/:id/g, "demo").replace(/:name/g, "360p").replace(/:file/g, "index.m3u8").replace(/:secret/g, "s").replace(/\*/g, "x/y");
      const method = route.method.toUpperCase();
      if (accessFor(method, example) === "open" && example.startsWith("/api/")) open.add(`${method} ${route.path}`);
    }
    expect([...open].sort()).toEqual(
      [
        "DELETE /api/session",
        "DELETE /api/uploads/:id",
        "GET /api/hls/:id/:name",
        "GET /api/hls/:id/:name/:file",
        "GET /api/stream/:id",
        "GET /api/videos/:id",
        "GET /api/videos/:id/thumbnail.jpg",
        "HEAD /api/uploads/:id",
        "OPTIONS /api/hls/:id/:name",
        "OPTIONS /api/hls/:id/:name/:file",
        "OPTIONS /api/stream/:id",
        "OPTIONS /api/uploads",
        "OPTIONS /api/uploads/:id",
        "OPTIONS /api/uploads/direct/:secret",
        "PATCH /api/uploads/:id",
        "POST /api/session",
        "POST /api/uploads/direct/:secret",
      ].sort(),
    );
  });

  test("the key works as a bearer token; keys are at least 16 characters", async () => {
    expect((await fetch(`${spool.url}/api/videos`, { headers: AUTH })).status).toBe(200);
    expect((await fetch(`${spool.url}/api/videos`, { headers: { authorization: `bearer   ${TEST_API_KEY}` } })).status).toBe(200);
    const saved = process.env.API_KEY;
    process.env.API_KEY = "short";
    try {
      expect(() => loadConfig()).toThrow("API_KEY must be at least 16 characters");
    } finally {
      if (saved === undefined) delete process.env.API_KEY;
      else process.env.API_KEY = saved;
    }
  });
});

describe("OpenAPI", () => {
  test("documents the bearer, cookie and token schemes, and which operations need the key, exactly as the policy decides", async () => {
    const spec = (await (await fetch(`${spool.url}/swagger/json`)).json()) as Record<string, any>;
    expect(spec.components.securitySchemes.apiKey).toMatchObject({ type: "http", scheme: "bearer" });
    expect(spec.components.securitySchemes.session).toMatchObject({ type: "apiKey", in: "cookie", name: "spool_session" });
    expect(spec.components.securitySchemes.playbackToken).toMatchObject({ type: "apiKey", in: "query", name: "token" });
    expect(spec.security).toEqual([{ apiKey: [] }, { session: [] }]);
    const mismatches: string[] = [];
    let keyed = 0;
    for (const [path, item] of Object.entries(spec.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(item)) {
        if (!["get", "head", "post", "put", "patch", "delete", "options"].includes(method)) continue;
        const example = path.replace(/\{[^}]+\}/g, (m) => (m === "{path}" ? "a/b" : m === "{name}" ? "360p" : m === "{file}" ? "index.m3u8" : "demo"));
        const security = (op.security ?? spec.security) as Record<string, string[]>[];
        const documented = security.length > 0 && !security.some((s) => Object.keys(s).length === 0) ? "key" : "open";
        if (documented === "key") keyed++;
        if (documented !== accessFor(method.toUpperCase(), example)) mismatches.push(`${method.toUpperCase()} ${path}: documented ${documented}, policy ${accessFor(method.toUpperCase(), example)}`);
        if (documented === "key" && !op.responses?.["401"]) mismatches.push(`${method.toUpperCase()} ${path}: needs the key but documents no 401`);
      }
    }
    expect(mismatches).toEqual([]);
    // Upload, list, change, delete, tokens, retry, events, tus creation, direct uploads.
    expect(keyed).toBeGreaterThanOrEqual(9);
  });
});

describe("the failure limit", () => {
  test("ten wrong keys from one client: then 429 with Retry-After, even with the right key; other clients unaffected", async () => {
    const client = { "x-forwarded-for": "203.0.113.77" };
    // The attempt that blocks the client is logged once, with its address; the ones after it are not.
    const warnings = await withCapturedLogs(async (lines) => {
      for (let i = 0; i < 12; i++) expect((await fetch(`${spool.url}/api/videos`, { headers: { ...client, authorization: "Bearer wrong-key-wrong-key" } })).status).toBe(i < 10 ? 401 : 429);
      return lines().filter((line) => line.component === "access");
    });
    expect(warnings.map((line) => [line.level, line.client, line.attempts])).toEqual([[40, "203.0.113.77", 10]]);
    const blocked = await fetch(`${spool.url}/api/videos`, { headers: { ...client, ...AUTH } });
    const body = await expectError(blocked, 429, "too_many_attempts");
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(Number(blocked.headers.get("retry-after"))).toBeLessThanOrEqual(60);
    expect(body.error.message).toContain("try again");
    // Signing in from there is blocked too; elsewhere the key works.
    const session = await fetch(`${spool.url}/api/session`, { method: "POST", headers: { ...client, "content-type": "application/json" }, body: JSON.stringify({ key: TEST_API_KEY }) });
    await expectError(session, 429, "too_many_attempts");
    expect((await fetch(`${spool.url}/api/videos`, { headers: { "x-forwarded-for": "203.0.113.78", ...AUTH } })).status).toBe(200);
    // Playback of public videos is never limited.
    expect((await fetch(`${spool.url}/api/stream/demo`, { headers: { ...client, range: "bytes=0-1" } })).status).toBe(206);
  });
});

describe("the failure limit and other sites' pages", () => {
  test("wrong keys sent from another site's page count apart: they lock out neither the client's key nor signing in on Spool's own page, only more keys from other sites", async () => {
    const client = { "x-forwarded-for": "203.0.113.81" };
    // What any page can make its visitor's browser send (CORS allows Authorization from other sites).
    const foreign = { ...client, origin: "https://evil.example", authorization: "Bearer wrong-key-wrong-key" };
    for (let i = 0; i < 12; i++) expect((await fetch(`${spool.url}/api/videos`, { headers: foreign })).status).toBe(i < 10 ? 401 : 429);
    await expectError(await fetch(`${spool.url}/api/videos`, { headers: { ...client, origin: "https://other.example", ...AUTH } }), 429, "too_many_attempts");
    // The same address without a foreign Origin (a script, the CLI) and Spool's own sign-in page.
    expect((await fetch(`${spool.url}/api/videos`, { headers: { ...client, ...AUTH } })).status).toBe(200);
    const signIn = await fetch(`${spool.url}/api/session`, { method: "POST", headers: { ...client, origin: spool.url, "content-type": "application/json" }, body: JSON.stringify({ key: TEST_API_KEY }) });
    expect(signIn.status).toBe(204);
    // Those have their own count: ten wrong keys without an Origin block them in turn.
    for (let i = 0; i < 10; i++) await fetch(`${spool.url}/api/videos`, { headers: { ...client, authorization: "Bearer wrong-key-wrong-key" } });
    await expectError(await fetch(`${spool.url}/api/videos`, { headers: { ...client, ...AUTH } }), 429, "too_many_attempts");
  });
});

describe("the failure limit and sessions", () => {
  test("stale session cookies are not guesses: twenty of them lock no one out, and a valid session passes even from a blocked address", async () => {
    const client = { "x-forwarded-for": "203.0.113.90" };
    const stale = { ...client, cookie: "spool_session=" + "A".repeat(43) };
    for (let i = 0; i < 20; i++) await expectError(await fetch(`${spool.url}/api/videos`, { headers: stale }), 401, "unauthorized");
    expect((await fetch(`${spool.url}/api/videos`, { headers: { ...client, ...AUTH } })).status).toBe(200);
    // Signed in, then the address is blocked by wrong keys (someone else behind it guessing).
    const signIn = await fetch(`${spool.url}/api/session`, { method: "POST", headers: { ...client, "content-type": "application/json" }, body: JSON.stringify({ key: TEST_API_KEY }) });
    expect(signIn.status).toBe(204);
    const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;
    for (let i = 0; i < 10; i++) await fetch(`${spool.url}/api/videos`, { headers: { ...client, authorization: "Bearer wrong-key-wrong-key" } });
    await expectError(await fetch(`${spool.url}/api/videos`, { headers: { ...client, ...AUTH } }), 429, "too_many_attempts");
    expect((await fetch(`${spool.url}/api/videos`, { headers: { ...client, cookie } })).status).toBe(200);
  });
});

describe("sessions", () => {
  test("sign in: 204 and an HttpOnly, SameSite=Strict cookie (Secure over HTTPS); a wrong key: 401 and no cookie", async () => {
    const wrong = await fetch(`${spool.url}/api/session`, { method: "POST", headers: { ...freshClient(), "content-type": "application/json" }, body: JSON.stringify({ key: "nope-nope-nope-nope" }) });
    await expectError(wrong, 401, "unauthorized");
    expect(wrong.headers.get("set-cookie")).toBeNull();

    const plain = await fetch(`${spool.url}/api/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: TEST_API_KEY }) });
    expect(plain.status).toBe(204);
    const cookie = plain.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^spool_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=604800; HttpOnly; SameSite=Strict$/);

    const proxied = await fetch(`${spool.url}/api/session`, { method: "POST", headers: { "content-type": "application/json", "x-forwarded-proto": "https" }, body: JSON.stringify({ key: TEST_API_KEY }) });
    expect(proxied.headers.get("set-cookie")).toEndWith("; HttpOnly; SameSite=Strict; Secure");

    // Signing in from another site's page is refused (login CSRF).
    await expectError(
      await fetch(`${spool.url}/api/session`, { method: "POST", headers: { "content-type": "application/json", origin: "https://evil.example" }, body: JSON.stringify({ key: TEST_API_KEY }) }),
      403,
      "cross_origin_request",
    );
  });

  test("sign in takes a small JSON body and nothing else: 400, 413 and 415 as JSON, never a 500, and no cookie", async () => {
    const post = (body: string, type = "application/json") => fetch(`${spool.url}/api/session`, { method: "POST", headers: { ...freshClient(), "content-type": type }, body });
    const refusals: [Response, number, string][] = [
      // Nested 1,900 deep in under 4 KiB: Elysia's own parsing ran out of call stack on these (500).
      [await post(`{"key":${"[".repeat(1900)}${"]".repeat(1900)}}`), 400, "bad_request"],
      [await post(JSON.stringify({ key: 5 })), 400, "bad_request"],
      [await post(JSON.stringify({ key: TEST_API_KEY, admin: true })), 400, "bad_request"],
      [await post("{"), 400, "bad_request"],
      [await post(""), 400, "bad_request"],
      [await post(JSON.stringify({ key: "k".repeat(5000) })), 413, "payload_too_large"],
      [await post(`key=${TEST_API_KEY}`, "application/x-www-form-urlencoded"), 415, "unsupported_media_type"],
    ];
    const messages: string[] = [];
    for (const [response, status, code] of refusals) {
      expect(response.headers.get("set-cookie")).toBeNull();
      messages.push((await expectError(response, status, code)).error.message);
    }
    expect(messages[1]).toBe("body key: must be the API key, a string of 1-512 characters");
    expect(messages[5]).toBe("The request body exceeds 4096 bytes, the limit for signing in");
  });

  test("the Origin check trusts X-Forwarded-Host only from a trusted proxy (TRUST_PROXY)", async () => {
    const rename = (base: string, cookie: string, headers: Record<string, string>) =>
      fetch(`${base}/api/videos/demo`, { method: "PATCH", headers: { cookie, "content-type": "application/json", ...headers }, body: JSON.stringify({ title: "Renamed through a proxy" }) });
    const proxied = { origin: "https://videos.example.com", "x-forwarded-host": "videos.example.com", "x-forwarded-proto": "https" };
    // Behind a trusted proxy (this suite's server): the public origin it names is ours.
    expect((await rename(spool.url, await signIn(), proxied)).status).toBe(200);
    const direct = await startTestSpool({ jobKinds: ["ingest"] });
    try {
      const cookie = await signIn(direct.url);
      // Without one, a request cannot name the origin it is checked against.
      await expectError(await rename(direct.url, cookie, { origin: "https://evil.example", "x-forwarded-host": "evil.example" }), 403, "cross_origin_request");
      await expectError(await rename(direct.url, cookie, proxied), 403, "cross_origin_request");
      expect((await rename(direct.url, cookie, { origin: direct.url })).status).toBe(200);
    } finally {
      await direct.stop();
    }
  });

  test("the cookie manages the library from Spool's own pages; signing out ends it on the server", async () => {
    const cookie = await signIn();
    const own = { cookie, origin: spool.url };
    expect((await fetch(`${spool.url}/api/videos`, { headers: { cookie } })).status).toBe(200);
    const renamed = await fetch(`${spool.url}/api/videos/demo`, { method: "PATCH", headers: { ...own, "content-type": "application/json" }, body: JSON.stringify({ title: "Renamed from the page" }) });
    expect(renamed.status).toBe(200);
    expect(((await renamed.json()) as VideoJson).title).toBe("Renamed from the page");
    // Sec-Fetch-Site: same-origin (no Origin) is a page of ours too.
    const again = await fetch(`${spool.url}/api/videos/demo`, { method: "PATCH", headers: { cookie, "sec-fetch-site": "same-origin", "content-type": "application/json" }, body: JSON.stringify({ title: "Spool demo (test pattern)" }) });
    expect(again.status).toBe(200);

    const out = await fetch(`${spool.url}/api/session`, { method: "DELETE", headers: own });
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toStartWith("spool_session=; Path=/; Max-Age=0;");
    // The old cookie is dead on the server, not only in the browser.
    await expectError(await fetch(`${spool.url}/api/videos`, { headers: { cookie, ...freshClient() } }), 401, "unauthorized");
  });

  test("rotating API_KEY ends every session: a restart with the same key keeps them, one with a new key refuses them", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "spool-rotate-"));
    const serve = async <T>(apiKey: string, body: (s: TestSpool) => Promise<T>): Promise<T> => {
      const server = await startTestSpool({ dataDir, seedDemo: false, apiKey });
      try {
        return await body(server);
      } finally {
        await server.stop();
      }
    };
    const list = (s: TestSpool, cookie: string) => fetch(`${s.url}/api/videos`, { headers: { cookie, ...freshClient() } });
    try {
      const cookie = await serve(TEST_API_KEY, async (s) => {
        const c = await signIn(s.url);
        expect((await list(s, c)).status).toBe(200);
        return c;
      });
      await serve(TEST_API_KEY, async (s) => expect((await list(s, cookie)).status).toBe(200));
      await serve("a-rotated-api-key-0123456789", async (s) => {
        await expectError(await list(s, cookie), 401, "unauthorized");
        // The new key signs in as ever.
        const fresh = await fetch(`${s.url}/api/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: "a-rotated-api-key-0123456789" }) });
        expect(fresh.status).toBe(204);
        expect((await list(s, fresh.headers.get("set-cookie")!.split(";")[0]!)).status).toBe(200);
      });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test("a cookie of the same name planted by another host of the site (sent first) neither locks the owner out nor survives sign-out", async () => {
    const cookie = await signIn();
    const own = cookie.slice(cookie.indexOf("=") + 1);
    // What the browser sends after evil.example.com set `spool_session=…; Domain=example.com; Path=/api`.
    const tossed = `spool_session=${"B".repeat(43)}; ${cookie}`;
    expect((await fetch(`${spool.url}/api/videos`, { headers: { cookie: tossed } })).status).toBe(200);
    const renamed = await fetch(`${spool.url}/api/videos/demo`, { method: "PATCH", headers: { cookie: tossed, origin: spool.url, "content-type": "application/json" }, body: JSON.stringify({ title: "Spool demo (test pattern)" }) });
    expect(renamed.status).toBe(200);
    // Signing out ends the owner's session even with the planted cookie in front of it.
    expect((await fetch(`${spool.url}/api/session`, { method: "DELETE", headers: { cookie: tossed, origin: spool.url } })).status).toBe(204);
    await expectError(await fetch(`${spool.url}/api/videos`, { headers: { cookie: `spool_session=${own}`, ...freshClient() } }), 401, "unauthorized");
  });

  test("signing out ends the event streams the session opened (within the 15 s recheck); another session's stream goes on", async () => {
    const [leaving, staying] = [await signIn(), await signIn()];
    const started = Date.now();
    const library = readEvents(`${spool.url}/api/videos/events`, () => false, 30_000, { cookie: leaving });
    const video = readEvents(`${spool.url}/api/videos/demo/events`, () => false, 30_000, { cookie: leaving });
    const other = readEvents(`${spool.url}/api/videos/events`, () => false, 22_000, { cookie: staying });
    await Bun.sleep(500);
    expect((await fetch(`${spool.url}/api/session`, { method: "DELETE", headers: { cookie: leaving, origin: spool.url } })).status).toBe(204);
    // Both end on the server's side (readEvents throws when it has to abort a stream itself).
    const [a, b] = await Promise.all([library, video]);
    expect([a.response.status, b.response.status]).toEqual([200, 200]);
    expect(Date.now() - started).toBeLessThan(20_000);
    await expect(other).rejects.toThrow("event stream timed out after 22000 ms");
  }, 40_000);

  test("the library page is a sign-in form without a session, and the library with one", async () => {
    const anonymous = await (await fetch(`${spool.url}/`)).text();
    expect(anonymous).toContain('id="signin-form"');
    expect(anonymous).not.toContain("Private one");
    const cookie = await signIn();
    const page = await (await fetch(`${spool.url}/`, { headers: { cookie } })).text();
    expect(page).toContain('id="upload-form"');
    expect(page).toContain("Private one");
    expect(page).toContain('id="sign-out"');
  });
});

describe("signed playback: the stream", () => {
  const stream = (query = "", headers: Record<string, string> = {}, method = "GET") => fetch(`${spool.url}/api/stream/${signed.id}${query}`, { headers, method });

  test("no token: 403 token_missing on GET, ranges and HEAD, before any precondition (no 304 leaks the tag)", async () => {
    await expectError(await stream(), 403, "token_missing");
    await expectError(await stream("", { range: "bytes=0-99" }), 403, "token_missing");
    const head = await stream("", {}, "HEAD");
    expect(head.status).toBe(403);
    const etag = (await stream(`?token=${(await mint(signed.id)).token}`, {}, "HEAD")).headers.get("etag")!;
    await expectError(await stream("", { "if-none-match": etag }), 403, "token_missing");
    // CORS headers come with the refusal, so a player on another origin can read why.
    expect((await stream("", { origin: "https://player.example" })).headers.get("access-control-allow-origin")).toBe("*");
  });

  test("a minted token: the exact bytes, ranges, HEAD, 304, private caching; the URLs it comes with work", async () => {
    const minted = await mint(signed.id, 120);
    expect(Date.parse(minted.expiresAt) - Date.now()).toBeGreaterThan(110_000);
    expect(minted.streamUrl).toBe(`/api/stream/${signed.id}?token=${minted.token}`);
    const whole = await fetch(spool.url + minted.streamUrl);
    expect(whole.status).toBe(200);
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(signedBytes);
    expect(whole.headers.get("cache-control")).toBe("private, max-age=3600");

    const part = await fetch(spool.url + minted.streamUrl, { headers: { range: "bytes=100-299" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-299/${signed.size}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(signedBytes.subarray(100, 300));

    const head = await fetch(spool.url + minted.streamUrl, { method: "HEAD" });
    expect(head.headers.get("content-length")).toBe(String(signed.size));
    expect((await fetch(spool.url + minted.streamUrl, { headers: { "if-none-match": head.headers.get("etag")! } })).status).toBe(304);

    const download = await fetch(`${spool.url}${minted.streamUrl}&download=1`, { method: "HEAD" });
    expect(download.headers.get("content-disposition")).toStartWith("attachment;");
  });

  test("a token minted by the customer's own backend (any JWT library, HS256, SIGNING_SECRET) works", async () => {
    const token = await selfMinted({ sub: signed.id, exp: Math.floor(Date.now() / 1000) + 60 });
    const response = await stream(`?token=${token}`, { range: "bytes=0-9" });
    expect(response.status).toBe(206);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(signedBytes.subarray(0, 10));
  });

  test("malformed, tampered, foreign-secret, wrong-video and expired tokens: 403 with the code that says which, never 200 or 500", async () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const good = await selfMinted({ sub: signed.id, exp });
    const [h, , s] = good.split(".");
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: signed.id, exp: exp + 86400 * 365 })).toString("base64url")}.${s}`;
    const cases: [string, string, string][] = [
      ["malformed", "not.a.jwt", "token_malformed"],
      // jose's decoder skips whitespace and padding: a respelled valid token must not verify.
      ["a space after a valid token", `${good} `, "token_malformed"],
      ["padding after a valid token", `${good}=`, "token_malformed"],
      ["line breaks inside the signature", `${h}.${good.split(".")[1]}.${s!.slice(0, 10)}\n\n${s!.slice(10)}`, "token_malformed"],
      ["empty", "", "token_missing"],
      ["tampered payload", forged, "token_invalid"],
      ["another secret", await selfMinted({ sub: signed.id, exp }, "another-secret-that-is-long-enough-0123"), "token_invalid"],
      ["no exp", await selfMinted({ sub: signed.id }), "token_invalid"],
      ["another video", await selfMinted({ sub: "demo", exp }), "token_wrong_video"],
      ["expired", await selfMinted({ sub: signed.id, exp: Math.floor(Date.now() / 1000) - 5 }), "token_expired"],
    ];
    for (const [name, token, code] of cases) {
      for (const method of ["GET", "HEAD"]) {
        const response = await stream(`?token=${encodeURIComponent(token)}`, { range: "bytes=0-1" }, method);
        expect({ name, method, status: response.status }).toEqual({ name, method, status: 403 });
        if (method === "GET") await expectError(response, 403, code);
      }
    }
  });

  test("a token expires while cached: the next request after exp is refused", async () => {
    // At least 3 s of life (exp is in whole seconds) for the two requests, then past it.
    const exp = Math.floor(Date.now() / 1000) + 4;
    const token = await selfMinted({ sub: signed.id, exp });
    expect((await stream(`?token=${token}`, { range: "bytes=0-0" })).status).toBe(206);
    expect((await stream(`?token=${token}`, { range: "bytes=0-0" })).status).toBe(206);
    await Bun.sleep(Math.max(0, exp * 1000 - Date.now()) + 100);
    await expectError(await stream(`?token=${token}`, { range: "bytes=0-0" }), 403, "token_expired");
  });

  test("the owner's key (or session) plays a signed video without a token", async () => {
    expect((await stream("", { ...AUTH, range: "bytes=0-0" })).status).toBe(206);
    const cookie = await signIn();
    expect((await stream("", { cookie, range: "bytes=0-0" })).status).toBe(206);
  });

  test("PATCH playback public opens it at once; signed closes it again at once", async () => {
    const patch = (playback: string) => fetch(`${spool.url}/api/videos/${signed.id}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ playback }) });
    expect(((await (await patch("public")).json()) as VideoJson).playback).toBe("public");
    const open = await stream("", { range: "bytes=0-0" });
    expect(open.status).toBe(206);
    expect(open.headers.get("cache-control")).toBe("public, max-age=86400");
    expect(((await (await patch("signed")).json()) as VideoJson).playback).toBe("signed");
    await expectError(await stream("", { range: "bytes=0-0" }), 403, "token_missing");
    // A value outside the enum is refused before anything is written: still signed.
    await expectError(await patch("secret"), 400, "bad_request");
    await expectError(await stream("", { range: "bytes=0-0" }), 403, "token_missing");
    expect(((await (await fetch(`${spool.url}/api/videos/${signed.id}`, { headers: AUTH })).json()) as VideoJson).playback).toBe("signed");
  });
});

describe("signed playback: HLS, pictures, JSON and the watch page", () => {
  test("hls of a signed video without a ladder (audio only): 403 without the token, as with one; 404 with it", async () => {
    const created = await uploadMultipart(spool.url, await makeAudio({ seconds: 1 }), { name: "private.mp3", playback: "signed" });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as VideoJson;
    await waitUntilSettled(spool.url, id);
    const master = `${spool.url}/api/hls/${id}/master.m3u8`;
    // Before, a 404 here and a 403 once a ladder exists told a stranger whether it had one.
    await expectError(await fetch(master), 403, "token_missing");
    const { token } = await mint(id);
    await expectError(await fetch(`${master}?token=${token}`), 404, "not_found");
  });

  test("hls: master → variant → init and media segments using only the URIs in the playlists; each refused without the token", async () => {
    const { hlsUrl, token } = await mint(signed.id);
    const base = new URL(hlsUrl, spool.url);
    const master = await fetch(base);
    expect(master.status).toBe(200);
    expect(master.headers.get("cache-control")).toBe("private, no-cache");
    const variantUris = (await master.text()).split("\n").filter((l) => l && !l.startsWith("#"));
    expect(variantUris.length).toBeGreaterThan(0);
    for (const uri of variantUris) {
      expect(uri).toEndWith(`?token=${token}`);
      const variantUrl = new URL(uri, base);
      const variant = await (await fetch(variantUrl)).text();
      const map = variant.match(/#EXT-X-MAP:URI="([^"]+)"/)![1]!;
      const segments = variant.split("\n").filter((l) => l && !l.startsWith("#"));
      expect(segments.length).toBeGreaterThan(0);
      for (const target of [map, ...segments]) {
        const url = new URL(target, variantUrl);
        const ok = await fetch(url);
        expect({ target, status: ok.status }).toEqual({ target, status: 200 });
        expect((await ok.arrayBuffer()).byteLength).toBeGreaterThan(0);
        url.search = "";
        await expectError(await fetch(url), 403, "token_missing");
      }
    }
    await expectError(await fetch(`${spool.url}/api/hls/${signed.id}/master.m3u8`), 403, "token_missing");
    // The rewritten playlist revalidates like a file.
    const etag = (await fetch(base, { method: "HEAD" })).headers.get("etag")!;
    expect((await fetch(base, { headers: { "if-none-match": etag } })).status).toBe(304);
  });

  test("the storyboard's sprites carry the token", async () => {
    const { token } = await mint(signed.id);
    const vttUrl = new URL(`/api/hls/${signed.id}/storyboard.vtt?token=${token}`, spool.url);
    const vtt = await (await fetch(vttUrl)).text();
    const sprite = vtt.split("\n").find((l) => l.includes("#xywh="))!;
    expect(sprite).toContain(`?token=${token}#xywh=`);
    const image = await fetch(new URL(sprite.slice(0, sprite.indexOf("#")), vttUrl));
    expect(image.status).toBe(200);
    expect(image.headers.get("content-type")).toBe("image/jpeg");
  });

  test("thumbnails: 403 without the token (and no frame is made), 200 with it", async () => {
    const thumbs = () => filesUnder(join(spool.dataDir, "videos", signed.id)).filter((f) => f.startsWith("thumbs/"));
    const before = thumbs();
    await expectError(await fetch(`${spool.url}/api/videos/${signed.id}/thumbnail.jpg?t=1.5&width=64`), 403, "token_missing");
    expect(thumbs()).toEqual(before);
    const { thumbnailUrl } = await mint(signed.id);
    const ok = await fetch(`${spool.url}${thumbnailUrl}&width=64`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toBe("private, max-age=3600");
  });

  test("a video switched from public to signed: its poster, thumbnails and clips are private at once, however often they were fetched while public", async () => {
    const created = await uploadMultipart(spool.url, source, { name: "turned.mp4", title: "Turned private", playback: "public" });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as VideoJson).id;
    expect((await waitUntilSettled(spool.url, id)).status).toBe("ready");
    const answers = (query: string) => [
      `/api/videos/${id}/thumbnail.jpg${query}`,
      `/api/videos/${id}/thumbnail.jpg?t=1.5&width=64${query.replace("?", "&")}`,
      `/api/stream/${id}?start=1&end=3${query.replace("?", "&")}`,
      `/api/stream/${id}?start=1&end=3&download=1${query.replace("?", "&")}`,
    ];
    const cacheControls = async (query: string, headers: Record<string, string> = {}) => {
      const seen: Record<string, string | null> = {};
      for (const path of answers(query)) {
        const response = await fetch(spool.url + path, { headers });
        expect({ path, status: response.status }).toEqual({ path, status: headers.range ? 206 : 200 });
        await response.arrayBuffer();
        seen[path.replace(/[?&]token=[^&]*/, "")] = response.headers.get("cache-control");
      }
      return seen;
    };
    const everyOne = (value: string) => Object.fromEntries(answers("").map((path) => [path, value]));
    const playback = async (value: string) =>
      expect((await fetch(`${spool.url}/api/videos/${id}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ playback: value }) })).status).toBe(200);
    // Public: shared caches may keep them (and Spool's own caches now hold these variants).
    expect(await cacheControls("")).toEqual(everyOne("public, max-age=86400"));
    expect(await cacheControls("", { range: "bytes=0-99" })).toEqual(everyOne("public, max-age=86400"));
    await playback("signed");
    await expectError(await fetch(`${spool.url}/api/stream/${id}?start=1&end=3`), 403, "token_missing");
    const { token } = await mint(id);
    expect(await cacheControls(`?token=${token}`)).toEqual(everyOne("private, max-age=3600"));
    expect(await cacheControls(`?token=${token}`, { range: "bytes=0-99" })).toEqual(everyOne("private, max-age=3600"));
    // And back.
    await playback("public");
    expect(await cacheControls("")).toEqual(everyOne("public, max-age=86400"));
  });

  test("a wrong key instead of a token: 401 on every playback route, as documented, and it counts toward the failure limit", async () => {
    const spec = (await (await fetch(`${spool.url}/swagger/json`)).json()) as Record<string, any>;
    const routes = [
      ["/api/stream/{id}", `/api/stream/${signed.id}`],
      ["/api/videos/{id}", `/api/videos/${signed.id}`],
      ["/api/hls/{id}/{name}", `/api/hls/${signed.id}/master.m3u8`],
      ["/api/hls/{id}/{name}/{file}", `/api/hls/${signed.id}/360p/index.m3u8`],
      ["/api/videos/{id}/thumbnail.jpg", `/api/videos/${signed.id}/thumbnail.jpg`],
    ] as const;
    for (const [documented, path] of routes) {
      for (const method of ["GET", "HEAD"]) {
        const response = await fetch(spool.url + path, { method, headers: { ...freshClient(), authorization: "Bearer wrong-key-wrong-key" } });
        expect({ path, method, status: response.status }).toEqual({ path, method, status: 401 });
        if (method === "GET") await expectError(response, 401, "unauthorized");
        const op = spec.paths[documented][method.toLowerCase()];
        expect({ documented, method, statuses: ["401", "403", "429"].filter((s) => op?.responses?.[s]) }).toEqual({ documented, method, statuses: ["401", "403", "429"] });
      }
    }
    // The same client, wrong again and again: blocked like any other wrong key.
    const client = freshClient();
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push((await fetch(`${spool.url}/api/stream/${signed.id}`, { headers: { ...client, authorization: "Bearer wrong-key-wrong-key" } })).status);
    expect(statuses).toEqual([...Array(10).fill(401), 429]);
  });

  test("GET /api/videos/:id: public videos are open; a signed one needs its token, and then its URLs carry it (and no cache keeps it)", async () => {
    const open = await fetch(`${spool.url}/api/videos/demo`);
    expect(open.status).toBe(200);
    expect(open.headers.get("cache-control")).toBe("no-cache");
    await expectError(await fetch(`${spool.url}/api/videos/${signed.id}`), 403, "token_missing");
    const { token } = await mint(signed.id);
    const answer = await fetch(`${spool.url}/api/videos/${signed.id}?token=${token}`);
    expect(answer.headers.get("cache-control")).toBe("private, no-store");
    const owners = await fetch(`${spool.url}/api/videos/${signed.id}`, { headers: AUTH });
    expect(owners.status).toBe(200);
    expect(owners.headers.get("cache-control")).toBe("private, no-store");
    const json = (await answer.json()) as VideoJson;
    expect(json.playback).toBe("signed");
    expect(json.streamUrl).toBe(`/api/stream/${signed.id}?token=${token}`);
    expect(json.hls.masterUrl).toBe(`/api/hls/${signed.id}/master.m3u8?token=${token}`);
    expect(JSON.stringify(json)).not.toContain(spool.dataDir);
  });

  test("the watch page: refused without a token, plays with one, says when it has expired", async () => {
    const refused = await fetch(`${spool.url}/watch/${signed.id}`);
    expect(refused.status).toBe(403);
    expect(await refused.text()).not.toContain("Private one");
    const { watchUrl, token } = await mint(signed.id);
    const page = await (await fetch(spool.url + watchUrl)).text();
    expect(page).toContain(`/api/stream/${signed.id}?token=${token}`);
    expect(page).toContain(`?token=${token}&amp;download=1`);
    const expired = await fetch(`${spool.url}/watch/${signed.id}?token=${await selfMinted({ sub: signed.id, exp: 1 })}`);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain("expired");
  });

  test("tokens: expiresIn from 1 s to 7 days; unknown videos 404", async () => {
    const post = (body: unknown, id = signed.id) => fetch(`${spool.url}/api/videos/${id}/tokens`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify(body) });
    await expectError(await post({ expiresIn: 0 }), 400, "bad_request");
    await expectError(await post({ expiresIn: 604_801 }), 400, "bad_request");
    await expectError(await post({ expiresIn: "soon" }), 400, "bad_request");
    expect((await post({ expiresIn: 604_800 })).status).toBe(201);
    const standard = (await (await post({})).json()) as { expiresAt: string };
    expect(Math.abs(Date.parse(standard.expiresAt) - Date.now() - 3_600_000)).toBeLessThan(5000);
    await expectError(await post({}, "AAAAAAAAAAAAAAAAAAAAAA"), 404, "not_found");
  });

  test("a token offers a thumbnailUrl exactly when the video's JSON has one: not while it is processing, not for audio", async () => {
    // Probed (it has a width) but not ready yet: its poster answers 409.
    const row = await spool.ctx.library.begin({ originalFilename: "pending.mp4", playback: "signed" });
    await spool.ctx.library.markProcessing(row.id, { contentType: "video/mp4", container: "mp4", duration: 6, width: 320, height: 240, videoCodec: "h264", audioCodec: "aac", bitrate: 600_000 });
    try {
      const pending = (await (await fetch(`${spool.url}/api/videos/${row.id}`, { headers: AUTH })).json()) as VideoJson;
      expect({ status: pending.status, thumbnailUrl: pending.thumbnailUrl }).toEqual({ status: "processing", thumbnailUrl: null });
      await expectError(await fetch(`${spool.url}/api/videos/${row.id}/thumbnail.jpg`, { headers: AUTH }), 409, "not_ready");
      expect((await mint(row.id)).thumbnailUrl).toBeNull();
    } finally {
      await spool.ctx.library.remove(row.id);
    }
    // A ready video: the poster, with the token.
    const ready = await mint(signed.id);
    expect(ready.thumbnailUrl).toBe(`/api/videos/${signed.id}/thumbnail.jpg?token=${ready.token}`);
  });
});

function tusUpload(endpoint: string, data: Buffer, options: Partial<tus.UploadOptions> = {}): Promise<{ url: string; videoId: string }> {
  return new Promise((resolve, reject) => {
    let videoId = "";
    const upload = new tus.Upload(data, {
      endpoint,
      chunkSize: 64 * 1024,
      retryDelays: [],
      metadata: { filename: "browser.mp4" },
      onAfterResponse: (_req, res) => {
        videoId = res.getHeader("Spool-Video-Id") || videoId;
      },
      onSuccess: () => resolve({ url: upload.url!, videoId }),
      onError: reject,
      ...options,
    });
    upload.start();
  });
}

describe("uploads", () => {
  test("a tus upload URL is a capability: not the video id, not in any listing; the video id alone reaches nothing", async () => {
    const data = Buffer.from(await Bun.file(source).arrayBuffer());
    const created = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": String(data.length), "upload-metadata": `playback ${btoa("signed")}` } });
    expect(created.status).toBe(201);
    const location = created.headers.get("location")!;
    const id = created.headers.get("spool-video-id")!;
    const uploadId = location.slice(location.lastIndexOf("/") + 1);
    expect(uploadId).not.toBe(id);
    expect(uploadId).toStartWith(`${id}.`);
    const listing = await (await fetch(`${spool.url}/api/videos?limit=200`, { headers: AUTH })).text();
    expect(listing).toContain(id);
    expect(listing).not.toContain(uploadId);
    // Guessing from the id: nothing there.
    expect((await fetch(`${spool.url}/api/uploads/${id}`, { method: "HEAD", headers: { "tus-resumable": "1.0.0" } })).status).toBe(404);
    const guess = await fetch(`${spool.url}/api/uploads/${id}`, { method: "PATCH", headers: { "tus-resumable": "1.0.0", "upload-offset": "0", "content-type": "application/offset+octet-stream" }, body: "x" });
    await expectError(guess, 404, "not_found");
    // The URL alone (no key) resumes and completes it.
    const patch = await fetch(`${spool.url}${location}`, { method: "PATCH", headers: { "tus-resumable": "1.0.0", "upload-offset": "0", "content-type": "application/offset+octet-stream" }, body: data });
    expect(patch.status).toBe(204);
    expect(patch.headers.get("spool-video-id")).toBe(id);
    const video = await waitUntilSettled(spool.url, id, 30_000);
    expect(video.status).toBe("ready");
    expect(video.playback).toBe("signed");
  });

  test("a direct upload URL: a browser uploads with no key, once; title and playback are the issuer's", async () => {
    const issued = await fetch(`${spool.url}/api/uploads/direct`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: "From a browser", playback: "signed" }) });
    expect(issued.status).toBe(201);
    const { uploadUrl, videoId, expiresAt } = (await issued.json()) as { uploadUrl: string; videoId: string; expiresAt: string };
    expect(uploadUrl).toMatch(/^\/api\/uploads\/direct\/[A-Za-z0-9_-]{43}$/);
    expect(Math.abs(Date.parse(expiresAt) - Date.now() - 3_600_000)).toBeLessThan(5000);

    const data = Buffer.from(await Bun.file(source).arrayBuffer());
    // tus-js-client as a page would use it: the URL as endpoint, no key, metadata trying to choose.
    const done = await tusUpload(spool.url + uploadUrl, data, { metadata: { filename: "b.mp4", title: "Chosen by the browser", playback: "public" } });
    expect(done.videoId).toBe(videoId);
    expect(done.url).not.toContain(uploadUrl);
    const video = await waitUntilSettled(spool.url, videoId, 30_000);
    expect(video).toMatchObject({ status: "ready", title: "From a browser", playback: "signed" });

    const before = await snapshot();
    const again = await fetch(spool.url + uploadUrl, { method: "POST", headers: { "tus-resumable": "1.0.0", "upload-length": "10" } });
    await expectError(again, 410, "upload_url_used");
    await expectError(await fetch(`${spool.url}/api/uploads/direct/${"x".repeat(43)}`, { method: "POST", headers: { "tus-resumable": "1.0.0", "upload-length": "10" } }), 403, "upload_url_invalid");
    expect(await snapshot()).toBe(before);
  });

  test("an expired direct upload URL: 410 upload_url_expired, nothing created", async () => {
    const issued = await fetch(`${spool.url}/api/uploads/direct`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ expiresIn: 1 }) });
    const { uploadUrl } = (await issued.json()) as { uploadUrl: string };
    await Bun.sleep(1100);
    const before = await snapshot();
    await expectError(await fetch(spool.url + uploadUrl, { method: "POST", headers: { "tus-resumable": "1.0.0", "upload-length": "10" } }), 410, "upload_url_expired");
    expect(await snapshot()).toBe(before);
  });

  test("two creations racing on one direct upload URL: exactly one video", async () => {
    const issued = await fetch(`${spool.url}/api/uploads/direct`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: "{}" });
    const { uploadUrl, videoId } = (await issued.json()) as { uploadUrl: string; videoId: string };
    const create = () => fetch(spool.url + uploadUrl, { method: "POST", headers: { "tus-resumable": "1.0.0", "upload-length": "100" } });
    const answers = await Promise.all([create(), create(), create()]);
    // One creates; one that comes after it is told about that upload (the same creation, as a
    // client that lost the 201 would repeat it); one that races it is told to try again (423,
    // which tus clients do), and then learns the same upload.
    const created = answers.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const refused of answers.filter((r) => r.status !== 201)) {
      await expectError(refused, 423, "upload_creation_in_progress");
      expect(refused.headers.get("retry-after")).toBe("1");
      const again = await create();
      expect(again.status).toBe(201);
      created.push(again);
    }
    expect(new Set(created.map((r) => r.headers.get("location"))).size).toBe(1);
    expect(await spool.ctx.library.get(videoId)).toMatchObject({ id: videoId, status: "uploading" });
    // One upload in the tus store: its bytes and its info file.
    expect(filesUnder(join(spool.dataDir, "uploads")).filter((f) => f.startsWith(videoId))).toHaveLength(2);
  });

  test("settings bodies are JSON the route accepts, or 400/415 with nothing issued: a malformed one never falls back to the defaults", async () => {
    // A trailing comma or a misspelt key once issued a URL (or token) with the defaults: a
    // `signed` request made a public video.
    const routes = [
      { path: "/api/uploads/direct", body: '{"playback":"signed"}', misspelt: '{"playbak":"signed"}' },
      { path: `/api/videos/${signed.id}/tokens`, body: '{"expiresIn":60}', misspelt: '{"expiresin":60}' },
    ];
    for (const { path, body, misspelt } of routes) {
      const send = (text: string | undefined, type = "application/json") => fetch(spool.url + path, { method: "POST", headers: { ...AUTH, ...(type ? { "content-type": type } : {}) }, body: text });
      const before = await snapshot();
      for (const [text, type, status, code, message] of [
        [body.replace("}", ",}"), "application/json", 400, "bad_request", /^The request body is not valid JSON$/],
        [misspelt, "application/json", 400, "bad_request", /^body (playbak|expiresin): Unexpected property \(send nothing, or \{/],
        ["[1]", "application/json", 400, "bad_request", /^body: Expected object/],
        ["null", "application/json", 400, "bad_request", /^body: Expected object/],
        ["nojson", "application/json", 400, "bad_request", /^The request body is not valid JSON$/],
        [body, "text/plain", 415, "unsupported_media_type", /^Send the body as application\/json/],
        // A number in a string is not a JSON integer (it once reached jose as "5": a 500).
        ...["5", " 5", "5e2", "0x10"].map((n) => [`{"expiresIn":"${n}"}`, "application/json", 400, "bad_request", /^body expiresIn: must be an integer number of seconds from 1 to \d+$/] as const),
      ] as const) {
        const refused = await send(text, type);
        expect({ path, text, status: refused.status }).toEqual({ path, text, status });
        expect((await expectError(refused, status, code)).error.message).toMatch(message);
      }
      expect(await snapshot()).toBe(before);
      // No body at all, or an empty object: the defaults.
      expect((await send(undefined, "")).status).toBe(201);
      expect((await send("{}")).status).toBe(201);
    }
    // What was asked for is what is issued.
    const issued = (await (await fetch(`${spool.url}/api/uploads/direct`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: '{"playback":"signed"}' })).json()) as { uploadUrl: string; videoId: string };
    const created = await fetch(spool.url + issued.uploadUrl, { method: "POST", headers: { "tus-resumable": "1.0.0", "upload-length": "100" } });
    expect(created.status).toBe(201);
    expect((await spool.ctx.library.get(issued.videoId))?.playback).toBe("signed");
  });

  test("multipart uploads take a playback field; a bad one is refused with nothing kept", async () => {
    const before = await snapshot();
    await expectError(await uploadMultipart(spool.url, source, { playback: "secret" }), 400, "bad_request");
    expect(await snapshot()).toBe(before);
    const created = (await (await uploadMultipart(spool.url, source, { playback: "public" })).json()) as VideoJson;
    expect(created.playback).toBe("public");
  });
});

describe("the key and secret files", () => {
  test("a DATA_DIR Spool creates is its owner's alone (0700): other users read no video, upload or database", async () => {
    const dataDir = join(await mkdtemp(join(tmpdir(), "spool-fresh-")), "nested", "data");
    const fresh = await startTestSpool({ dataDir, seedDemo: false, jobKinds: [] });
    try {
      expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    } finally {
      await fresh.stop();
    }
  });

  test("unset, they are generated once into DATA_DIR with mode 0600; the notice says where, never the key", async () => {
    const fresh = await startTestSpool({ apiKey: undefined, signingSecret: undefined, seedDemo: false, jobKinds: ["ingest"] });
    try {
      const keyFile = join(fresh.dataDir, "api-key");
      const key = (await Bun.file(keyFile).text()).trim();
      expect(key).toMatch(/^spool_[A-Za-z0-9_-]{43}$/);
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(statSync(join(fresh.dataDir, "signing-secret")).mode & 0o777).toBe(0o600);
      expect(fresh.apiKeyNotice).toContain(keyFile);
      expect(fresh.apiKeyNotice).toContain(`cat ${keyFile}`);
      expect(fresh.apiKeyNotice).not.toContain(key);
      expect((await fetch(`${fresh.url}/api/videos`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
      expect((await fetch(`${fresh.url}/api/videos`, { headers: AUTH })).status).toBe(401);
    } finally {
      await fresh.stop();
    }
  });
});

describe("rotating SIGNING_SECRET", () => {
  test("with the old one as SIGNING_SECRET_PREVIOUS, tokens it signed still play until they expire; new ones are signed with the new secret", async () => {
    const NEW = "the-signing-secret-after-rotation-0123456789";
    const rotated = await startTestSpool({ signingSecret: NEW, previousSigningSecret: TEST_SIGNING_SECRET, jobKinds: ["ingest"] });
    try {
      const patched = await fetch(`${rotated.url}/api/videos/demo`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: '{"playback":"signed"}' });
      expect(patched.status).toBe(200);
      const sign = (secret: string, exp: number) => new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("demo").setExpirationTime(exp).sign(new TextEncoder().encode(secret));
      const play = (token: string) => fetch(`${rotated.url}/api/stream/demo?token=${token}`, { headers: { range: "bytes=0-9" } });
      const inAnHour = Math.floor(Date.now() / 1000) + 3600;
      expect((await play(await sign(TEST_SIGNING_SECRET, inAnHour))).status).toBe(206);
      expect((await play(await sign(NEW, inAnHour))).status).toBe(206);
      await expectError(await play(await sign(TEST_SIGNING_SECRET, Math.floor(Date.now() / 1000) - 10)), 403, "token_expired");
      await expectError(await play(await sign("a-secret-nobody-configured-0123456789abc", inAnHour)), 403, "token_invalid");

      const minted = await fetch(`${rotated.url}/api/videos/demo/tokens`, { method: "POST", headers: AUTH });
      const { token } = (await minted.json()) as { token: string };
      await expect(jwtVerify(token, new TextEncoder().encode(NEW))).resolves.toBeDefined();
      await expect(jwtVerify(token, new TextEncoder().encode(TEST_SIGNING_SECRET))).rejects.toThrow();
    } finally {
      await rotated.stop();
    }
  });
});

describe("tus CORS follows CORS_ORIGINS", () => {
  test("a listed origin gets its CORS headers; another gets none; every answer varies on Origin", async () => {
    const listed = await startTestSpool({ corsOrigins: ["https://app.example"], seedDemo: false, jobKinds: ["ingest"] });
    try {
      const preflight = (origin: string) =>
        fetch(`${listed.url}/api/uploads`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, tus-resumable, upload-length" } });
      const [ours, theirs] = [await preflight("https://app.example"), await preflight("https://evil.example")];
      expect(ours.headers.get("access-control-allow-origin")).toBe("https://app.example");
      expect(theirs.headers.get("access-control-allow-origin")).toBeNull();
      // The answer depends on Origin: a shared cache must key on it (Fetch, "CORS protocol and HTTP caches").
      expect([ours.headers.get("vary"), theirs.headers.get("vary")]).toEqual(["Origin", "Origin"]);
      const created = await fetch(`${listed.url}/api/uploads`, { method: "POST", headers: { ...AUTH, origin: "https://evil.example", "tus-resumable": "1.0.0", "upload-length": "10" } });
      expect(created.status).toBe(201);
      expect(created.headers.get("access-control-allow-origin")).toBeNull();
      expect(created.headers.get("vary")).toBe("Origin");
      const location = new URL(created.headers.get("location")!, listed.url).href;
      const head = await fetch(location, { method: "HEAD", headers: { ...AUTH, origin: "https://app.example", "tus-resumable": "1.0.0" } });
      expect([head.status, head.headers.get("access-control-allow-origin"), head.headers.get("vary")]).toEqual([200, "https://app.example", "Origin"]);
    } finally {
      await listed.stop();
    }
  });

  test("with the `*` policy or none, tus's answers do not vary on Origin", async () => {
    for (const corsOrigins of [["*"], []]) {
      const spool = await startTestSpool({ corsOrigins, seedDemo: false, jobKinds: ["ingest"] });
      try {
        const preflight = await fetch(`${spool.url}/api/uploads`, { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "POST" } });
        expect([corsOrigins, preflight.status, preflight.headers.get("vary")]).toEqual([corsOrigins, 204, null]);
      } finally {
        await spool.stop();
      }
    }
  });
});
