/**
 * Operations: /metrics, X-Request-Id, /ready, 405 with Allow, the pages' security headers, and
 * the process lifecycle of `bun src/index.ts` as `npm start` runs it: graceful drain on SIGTERM
 * (a slow download finishes with every byte), workers that leave when their primary is killed
 * with SIGKILL, a second instance refused on a port already served, metrics summed across WORKERS.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, readFileSync, statfsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectError, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { makeLargeVideo } from "../helpers/media.ts";
import { freePort, listening, childrenOf, spawnSpool, ROOT } from "../helpers/process.ts";
import { AUTH, TEST_API_KEY, startTestSpool, withCapturedLogs, type TestSpool } from "../helpers/spool.ts";
import { JSON_BODY_LIMIT } from "../../src/modules/body-limit/plugin.ts";
import { postgresAvailable, startPostgres } from "../helpers/postgres.ts";
import { startRelay } from "../helpers/relay.ts";
import { READY_CHECK_TIMEOUT_MS } from "../../src/modules/health/answers.ts";
import { createApp } from "../../src/web.ts";

setDefaultTimeout(60_000);

let spool: TestSpool;
let scratch: string;
beforeAll(async () => {
  spool = await startTestSpool({ jobKinds: ["ingest"] });
  scratch = await mkdtemp(join(tmpdir(), "spool-ops-"));
});
afterAll(async () => {
  await spool?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** One sample's value from Prometheus text (0 when absent). */
function sample(text: string, name: string, labels = ""): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `) || (labels === "" && l.startsWith(`${name} `)));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

const scrape = async (base = spool.url) => {
  const response = await fetch(`${base}/metrics`, { headers: AUTH });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  return response.text();
};

describe("/metrics", () => {
  test("needs the key", async () => {
    await expectError(await fetch(`${spool.url}/metrics`), 401, "unauthorized");
  });

  test("counts stream answers by status and the bytes they carried, exactly", async () => {
    const before = await scrape();
    for (let i = 0; i < 5; i++) expect((await fetch(`${spool.url}/api/stream/demo`, { headers: { range: "bytes=0-99" } })).status).toBe(206);
    // Two ranges far enough apart not to be merged: 20 bytes of body.
    expect((await fetch(`${spool.url}/api/stream/demo`, { headers: { range: "bytes=0-9,1000-1009" } })).status).toBe(206);
    const whole = await fetch(`${spool.url}/api/stream/demo`);
    const size = (await whole.arrayBuffer()).byteLength;
    expect((await fetch(`${spool.url}/api/stream/AAAAAAAAAAAAAAAAAAAAAA`)).status).toBe(404);
    const after = await scrape();
    const delta = (labels: string) => sample(after, "spool_stream_responses_total", labels) - sample(before, "spool_stream_responses_total", labels);
    expect(delta('{status="206"}')).toBe(6);
    expect(delta('{status="200"}')).toBe(1);
    expect(delta('{status="404"}')).toBe(1);
    expect(sample(after, "spool_file_response_bytes_total") - sample(before, "spool_file_response_bytes_total")).toBe(5 * 100 + 20 + size);
  });

  test("counts other routes by template and status, and reports the process, caches and queues", async () => {
    const before = await scrape();
    await fetch(`${spool.url}/api/videos/demo`);
    await fetch(`${spool.url}/api/videos/AAAAAAAAAAAAAAAAAAAAAA`);
    const after = await scrape();
    const delta = (labels: string) => sample(after, "spool_http_requests_total", labels) - sample(before, "spool_http_requests_total", labels);
    expect(delta('{route="/api/videos/:id",method="GET",status="200"}')).toBe(1);
    expect(delta('{route="/api/videos/:id",method="GET",status="404"}')).toBe(1);
    for (const family of [
      "spool_http_request_duration_seconds_bucket",
      "spool_cache_lookups_total",
      "spool_http_requests_in_flight",
      "spool_ingest_jobs",
      "spool_transcode_jobs_queued",
      "spool_transcode_jobs_running",
      "spool_process_resident_memory_bytes",
      "spool_process_open_fds",
    ]) {
      expect({ family, present: after.includes(`\n${family}`) }).toEqual({ family, present: true });
    }
    // The disk DATA_DIR is on, as statfs(2) sees it (free space moves with other work: ±64 MiB).
    const fs = statfsSync(spool.dataDir);
    expect(sample(after, "spool_data_dir_size_bytes")).toBe(fs.blocks * fs.bsize);
    expect(Math.abs(sample(after, "spool_data_dir_available_bytes") - fs.bavail * fs.bsize)).toBeLessThan(64 * 2 ** 20);
  });
});

describe("/metrics: uploads and jobs", () => {
  test("counts the bytes received by each way in, and times the ingest jobs", async () => {
    const file = join(ROOT, "fixtures/demo.mp4");
    const bytes = new Uint8Array(await Bun.file(file).arrayBuffer());
    const before = await scrape();
    const form = new FormData();
    form.append("file", new Blob([bytes]), "m.mp4");
    const created = await fetch(`${spool.url}/api/videos`, { method: "POST", headers: AUTH, body: form });
    expect(created.status).toBe(201);
    const tus = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": String(bytes.length) } });
    const half = 100_000;
    const headers = { "tus-resumable": "1.0.0", "content-type": "application/offset+octet-stream" };
    expect((await fetch(spool.url + tus.headers.get("location"), { method: "PATCH", headers: { ...headers, "upload-offset": "0" }, body: bytes.subarray(0, half) })).status).toBe(204);
    expect((await fetch(spool.url + tus.headers.get("location"), { method: "PATCH", headers: { ...headers, "upload-offset": String(half) }, body: bytes.subarray(half) })).status).toBe(204);
    await waitUntilSettled(spool.url, ((await created.json()) as VideoJson).id);
    await waitUntilSettled(spool.url, tus.headers.get("spool-video-id")!);
    // A video reads ready a moment before its job's duration is recorded (CI saw 1 of 2 once).
    let after = await scrape();
    const jobsDone = (text: string) => sample(text, "spool_job_duration_seconds_count", '{kind="ingest",outcome="done"}');
    for (const deadline = Date.now() + 5000; jobsDone(after) - jobsDone(before) < 2 && Date.now() < deadline; after = await scrape()) await Bun.sleep(20);
    const delta = (name: string, labels: string) => sample(after, name, labels) - sample(before, name, labels);
    expect(delta("spool_upload_bytes_total", '{via="multipart"}')).toBe(bytes.length);
    expect(delta("spool_upload_bytes_total", '{via="tus"}')).toBe(bytes.length);
    expect(delta("spool_job_duration_seconds_count", '{kind="ingest",outcome="done"}')).toBe(2);
  });
});

describe("X-Request-Id", () => {
  test("every answer has one: generated, or the client's own when it is sane", async () => {
    const routes = ["/api/stream/demo", "/api/videos/demo", "/api/videos", "/health", "/nope", "/api/stream/no!such"];
    const ids = new Set<string>();
    for (const path of routes) {
      const response = await fetch(spool.url + path, { headers: { range: "bytes=0-0" } });
      const id = response.headers.get("x-request-id");
      expect({ path, id: /^[a-z0-9]+-[a-z0-9]+$/.test(id ?? "") }).toEqual({ path, id: true });
      ids.add(id!);
    }
    expect(ids.size).toBe(routes.length);
    // CORS preflights too, the stream's (a native route) as the other routes'.
    for (const path of ["/api/stream/demo", "/api/hls/demo/master.m3u8", "/api/uploads"]) {
      const preflight = await fetch(spool.url + path, { method: "OPTIONS", headers: { origin: "https://player.example", "access-control-request-method": "GET" } });
      expect({ path, status: preflight.status, id: /^[a-z0-9]+-[a-z0-9]+$/.test(preflight.headers.get("x-request-id") ?? "") }).toEqual({ path, status: 204, id: true });
      const given = await fetch(spool.url + path, { method: "OPTIONS", headers: { origin: "https://player.example", "access-control-request-method": "GET", "x-request-id": "trace-pre.1" } });
      expect({ path, id: given.headers.get("x-request-id") }).toEqual({ path, id: "trace-pre.1" });
    }
    for (const path of ["/api/stream/demo", "/api/videos", "/health"]) {
      expect((await fetch(spool.url + path, { headers: { "x-request-id": "trace-abc.123" } })).headers.get("x-request-id")).toBe("trace-abc.123");
      // Not something a log line could be forged with.
      expect((await fetch(spool.url + path, { headers: { "x-request-id": "a b\tc" } })).headers.get("x-request-id")).not.toBe("a b\tc");
      expect((await fetch(spool.url + path, { headers: { "x-request-id": "x".repeat(300) } })).headers.get("x-request-id")).not.toBe("x".repeat(300));
    }
  });
});

describe("/ready", () => {
  test("200 with each check while the database and storage answer; 503 while draining", async () => {
    const ready = await fetch(`${spool.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { database: "ok", storage: "ok" } });
    expect((await fetch(`${spool.url}/health`)).status).toBe(200);

    const draining = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"] });
    try {
      draining.ctx.lifecycle.draining = true;
      const body = await expectError(await fetch(`${draining.url}/ready`), 503, "draining");
      expect((body as unknown as { checks: Record<string, string> }).checks).toEqual({ database: "ok", storage: "ok" });
      // Liveness is not readiness.
      expect((await fetch(`${draining.url}/health`)).status).toBe(200);
    } finally {
      await draining.stop();
    }
  });

  test("503 naming the dependency when the database does not answer, its error in the log only; /metrics still answers", async () => {
    const broken = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"] });
    try {
      await broken.ctx.db.close();
      const { response, logged } = await withCapturedLogs(async (lines) => {
        const response = await fetch(`${broken.url}/ready`);
        await fetch(`${broken.url}/ready`);
        return { response, logged: lines().filter((l) => l.component === "health") };
      });
      const body = (await response.json()) as { error: { code: string; message: string }; checks: Record<string, string> };
      expect(response.status).toBe(503);
      expect(body.error.code).toBe("not_ready");
      // /ready is open: what the driver said (hosts, paths) is for the operator's log.
      expect(body.checks).toEqual({ database: "unavailable", storage: "ok" });
      expect(body.error.message).toBe("database: unavailable");
      // Once, not once per poll.
      expect(logged.map((l) => [l.check, l.msg, typeof l.error])).toEqual([["database", "a readiness check failed", "string"]]);
      // /metrics still answers: the queue depths it cannot read are NaN, the rest as usual.
      const metrics = await fetch(`${broken.url}/metrics`, { headers: AUTH });
      expect(metrics.status).toBe(200);
      const text = await metrics.text();
      // (prom-client 15 writes NaN as `Nan`; Prometheus parses either.)
      expect(text).toMatch(/\nspool_ingest_jobs nan\n/i);
      expect(sample(text, "spool_process_resident_memory_bytes")).toBeGreaterThan(0);
    } finally {
      await broken.stop().catch(() => {});
    }
  });
});

/** A PostgreSQL database reached through a relay the test can freeze or stop, and its URL through the relay. */
async function postgresBehindRelay() {
  const pg = await startPostgres();
  const url = new URL(await pg.createDatabase());
  const relay = await startRelay(url.hostname, Number(url.port));
  url.port = String(relay.port);
  return { pg, relay, databaseUrl: url.toString() };
}

describe("/ready with a frozen database", () => {
  // PostgreSQL behind a relay that stops passing bytes: a network partition, or a stalled host.
  test.skipIf(!postgresAvailable())("503 within its timeout, naming the database; one check in flight however many ask; /health unaffected; 200 again once it answers", async () => {
    const { pg, relay, databaseUrl } = await postgresBehindRelay();
    const server = await startTestSpool({ databaseUrl, seedDemo: false, jobKinds: ["ingest"] });
    try {
      expect((await fetch(`${server.url}/ready`)).status).toBe(200);
      // Counted, not replaced: the real ping still goes to the real database.
      const db = server.ctx.db;
      const ping = db.ping.bind(db);
      let pings = 0;
      db.ping = () => {
        pings++;
        return ping();
      };
      relay.freeze();
      const started = performance.now();
      const answers = await Promise.all(Array.from({ length: 50 }, () => fetch(`${server.url}/ready`)));
      const waited = performance.now() - started;
      for (const answer of answers) {
        const body = await expectError(answer, 503, "not_ready");
        expect(body.error.message).toBe(`database: no answer within ${READY_CHECK_TIMEOUT_MS} ms`);
      }
      expect(waited).toBeLessThan(READY_CHECK_TIMEOUT_MS + 3000);
      expect(pings).toBe(1);
      // Liveness does not depend on the database.
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      // The same ping is still the one in flight: the next poll starts no other.
      await expectError(await fetch(`${server.url}/ready`), 503, "not_ready");
      expect(pings).toBe(1);
      relay.thaw();
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await fetch(`${server.url}/ready`)).status;
        if (status !== 200) await Bun.sleep(50);
      }
      expect(status).toBe(200);
    } finally {
      relay.thaw();
      await server.stop();
      await relay.stop();
      await pg.stop();
    }
  });
});

describe("a database that cannot be reached", () => {
  test.skipIf(!postgresAvailable())("requests that need it: JSON 503 database_unavailable with Retry-After, not a 500", async () => {
    const { pg, relay, databaseUrl } = await postgresBehindRelay();
    const server = await startTestSpool({ databaseUrl, jobKinds: ["ingest"] });
    try {
      expect((await fetch(`${server.url}/api/stream/demo`, { headers: { range: "bytes=0-1" } })).status).toBe(206);
      // The connection is cut and every new one refused: PostgreSQL is down.
      await relay.stop();
      for (const [path, headers] of [
        ["/api/videos", AUTH],
        ["/api/videos/demo", AUTH],
        ["/api/stream/AAAAAAAAAAAAAAAAAAAAAA", {}],
      ] as const) {
        const response = await fetch(server.url + path, { headers });
        expect({ path, status: response.status, retryAfter: response.headers.get("retry-after") }).toEqual({ path, status: 503, retryAfter: "5" });
        await expectError(response, 503, "database_unavailable");
      }
    } finally {
      await server.stop().catch(() => {});
      await pg.stop();
    }
  });
});

describe("a database that stalls", () => {
  // PostgreSQL behind a frozen relay: connections stay open, nothing answers (a stopped host, a
  // partition). Bun.SQL alone would hold these requests until the kernel gave up on the socket.
  test.skipIf(!postgresAvailable())("requests that need it: 503 database_unavailable once DATABASE_QUERY_TIMEOUT_MS has passed; they work again once it answers", async () => {
    const { pg, relay, databaseUrl } = await postgresBehindRelay();
    const timeoutMs = 800;
    const server = await startTestSpool({ databaseUrl, databaseQueryTimeoutMs: timeoutMs, jobKinds: ["ingest"] });
    // Each asked once before the freeze and never cached: the list's pages are (per limit), so
    // the frozen one is a page not asked before.
    const paths = [
      ["/api/videos?limit=7", AUTH],
      ["/api/videos/demo", AUTH],
      ["/api/stream/AAAAAAAAAAAAAAAAAAAAAA", {}],
    ] as const;
    try {
      expect((await fetch(`${server.url}/api/videos/demo`, { headers: AUTH })).status).toBe(200);
      relay.freeze();
      const started = performance.now();
      const answers = await Promise.all(paths.map(([path, headers]) => fetch(server.url + path, { headers })));
      const waited = performance.now() - started;
      for (const [i, response] of answers.entries()) {
        const path = paths[i]![0];
        expect({ path, status: response.status, retryAfter: response.headers.get("retry-after") }).toEqual({ path, status: 503, retryAfter: "5" });
        const body = await expectError(response, 503, "database_unavailable");
        expect(body.error.message).not.toContain("ms");
      }
      expect(waited).toBeGreaterThanOrEqual(timeoutMs - 50);
      expect(waited).toBeLessThan(timeoutMs + 3000);
      relay.thaw();
      for (const [path, headers] of paths) {
        let status = 0;
        for (let i = 0; i < 50 && status !== 200 && status !== 404; i++) {
          status = (await fetch(server.url + path, { headers })).status;
          if (status === 503) await Bun.sleep(100);
        }
        expect({ path, status }).toEqual({ path, status: path.startsWith("/api/stream") ? 404 : 200 });
      }
    } finally {
      relay.thaw();
      await server.stop().catch(() => {});
      await relay.stop();
      await pg.stop();
    }
  });
});

describe("Date (RFC 9110 §6.6.1)", () => {
  test("answers to HEAD carry a Date as answers to GET do (Bun leaves it out on HEAD)", async () => {
    for (const path of ["/api/stream/demo", "/api/stream/AAAAAAAAAAAAAAAAAAAAAA", "/api/videos/demo", "/health", "/nope", "/swagger"]) {
      const head = await fetch(spool.url + path, { method: "HEAD", headers: AUTH });
      const date = Date.parse(head.headers.get("date") ?? "");
      expect({ path, date: Math.abs(date - Date.now()) < 5000 }).toEqual({ path, date: true });
    }
  });
});

describe("request log lines and capabilities", () => {
  test("upload URLs are logged without their secret: tus uploads keep the video id, direct upload URLs nothing", async () => {
    const secrets: string[] = [];
    const logged = await withCapturedLogs(async (lines) => {
      const created = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": "10" } });
      expect(created.status).toBe(201);
      const location = new URL(created.headers.get("location")!, spool.url).pathname;
      const [videoId, secret] = location.slice("/api/uploads/".length).split(".");
      secrets.push(secret!);
      expect((await fetch(spool.url + location, { method: "HEAD", headers: { "tus-resumable": "1.0.0" } })).status).toBe(200);
      const issued = await fetch(`${spool.url}/api/uploads/direct`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: "{}" });
      expect(issued.status).toBe(201);
      const direct = ((await issued.json()) as { uploadUrl: string }).uploadUrl;
      secrets.push(direct.slice(direct.lastIndexOf("/") + 1));
      // Used as a tus client would, repeated (the same upload), and then for another (410): all logged.
      const tus = { "tus-resumable": "1.0.0", "upload-length": "10" };
      const made = await fetch(spool.url + direct, { method: "POST", headers: tus });
      expect(made.status).toBe(201);
      secrets.push(made.headers.get("location")!.split(".").pop()!);
      expect((await fetch(spool.url + direct, { method: "POST", headers: tus })).status).toBe(201);
      expect((await fetch(spool.url + direct, { method: "POST", headers: { ...tus, "upload-length": "11" } })).status).toBe(410);
      expect((await fetch(spool.url + location, { method: "DELETE", headers: { "tus-resumable": "1.0.0" } })).status).toBe(204);
      // (A line of an earlier test's request may arrive late: only the uploads' are compared.)
      const requests = () => lines().filter((line) => line.msg === "request" && String(line.path).startsWith("/api/uploads"));
      for (let i = 0; i < 100 && requests().length < 7; i++) await Bun.sleep(10);
      return { videoId, lines: lines(), paths: requests().map((line) => `${line.method} ${line.path} ${line.status}`) };
    });
    expect(logged.paths).toEqual([
      "POST /api/uploads 201",
      `HEAD /api/uploads/${logged.videoId}.<secret> 200`,
      "POST /api/uploads/direct 201",
      "POST /api/uploads/direct/<secret> 201",
      "POST /api/uploads/direct/<secret> 201",
      "POST /api/uploads/direct/<secret> 410",
      `DELETE /api/uploads/${logged.videoId}.<secret> 204`,
    ]);
    const text = JSON.stringify(logged.lines);
    expect(secrets).toHaveLength(3);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(20);
      expect(text).not.toContain(secret);
    }
  });
});

describe("methods", () => {
  test("a method a route does not support: 405 with Allow, for every kind of route", async () => {
    const cases: [string, string, string][] = [
      ["DELETE", "/health", "GET, HEAD"],
      ["POST", "/ready", "GET, HEAD"],
      ["PUT", "/api/videos/demo", "DELETE, GET, HEAD, PATCH"],
      // The library feed's path is not a video's, though "events" has the shape of an id.
      ["DELETE", "/api/videos/events", "GET, HEAD"],
      ["PATCH", "/api/videos/events", "GET, HEAD"],
      ["POST", "/api/videos/events", "GET, HEAD"],
      ["OPTIONS", "/api/videos/events", "GET, HEAD"],
      // A method Bun's router does not know reaches the app, which lists the same methods.
      ["PROPFIND", "/api/stream/demo", "GET, HEAD, OPTIONS"],
      ["PUT", "/api/stream/demo", "GET, HEAD, OPTIONS"],
      ["DELETE", "/swagger", "GET, HEAD"],
      ["POST", "/watch/demo", "GET, HEAD"],
      ["OPTIONS", "/health", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const response = await fetch(spool.url + path, { method, headers: AUTH });
      expect({ method, path, status: response.status, allow: response.headers.get("allow") }).toEqual({ method, path, status: 405, allow });
      await expectError(response, 405, "method_not_allowed");
    }
    await expectError(await fetch(`${spool.url}/nothing/here`, { method: "DELETE", headers: AUTH }), 404, "not_found");
    // The stream is open: any method on it is a 405 with or without the key, TRACE too (it once
    // fell through to the app's key check: 401 without the key).
    for (const method of ["TRACE", "PUT", "DELETE"]) {
      const response = await fetch(`${spool.url}/api/stream/demo`, { method });
      expect({ method, status: response.status, allow: response.headers.get("allow") }).toEqual({ method, status: 405, allow: "GET, HEAD, OPTIONS" });
    }
  });
});

describe("the probes as native routes", () => {
  /** Status, headers (but the request's own id, the clock, and the length the wire adds) and body. */
  const answer = async (response: Response) => {
    const headers = Object.fromEntries([...response.headers].filter(([name]) => name !== "x-request-id" && name !== "date" && name !== "content-length"));
    // Scrapes differ in their counts (each counts the one before); their shape is what matters.
    const text = await response.text();
    const body = text.startsWith("# HELP") ? text.split("\n").filter((line) => line.startsWith("# TYPE")).join("\n") : text;
    return { status: response.status, headers, body };
  };
  const cases = (url: string): [string, Request][] =>
    ["GET", "HEAD", "POST", "DELETE", "OPTIONS", "TRACE"].flatMap((method) =>
      ["/health", "/ready", "/metrics", "/health?probe=1"].flatMap((path) =>
        [{}, AUTH].map((headers): [string, Request] => [`${method} ${path} ${Object.keys(headers).length ? "key" : "no key"}`, new Request(url + path, { method, headers })]),
      ),
    );

  test("/health, /ready and /metrics: Bun's router answers exactly as the Elysia app does, every method, with and without the key, and with METRICS=0", async () => {
    const off = await startTestSpool({ metrics: false });
    try {
      for (const server of [spool, off]) {
        const app = createApp(server.ctx);
        for (const [name, request] of cases(server.url)) {
          // The Elysia app answers HEAD's body too; the wire drops it. Bun 1.4.5's fetch also
          // reads no body on an answer to TRACE (curl shows the server sends it).
          const elysia = await answer(await app.handle(request.clone()));
          if (request.method === "HEAD" || request.method === "TRACE") elysia.body = "";
          const native = await answer(await fetch(request));
          expect({ name, metrics: server === spool, ...native }).toEqual({ name, metrics: server === spool, ...elysia });
        }
      }
    } finally {
      await off.stop();
    }
  });

  test("answers are counted and logged, refusals included: the probes under their route, the guards' (key, body size) before any route", async () => {
    const before = await scrape();
    const logged = await withCapturedLogs(async (lines) => {
      await expectError(await fetch(`${spool.url}/metrics`), 401, "unauthorized");
      expect((await fetch(`${spool.url}/health`, { method: "POST" })).status).toBe(405);
      expect((await fetch(`${spool.url}/ready`)).status).toBe(200);
      await expectError(await fetch(`${spool.url}/api/videos`), 401, "unauthorized");
      await expectError(await fetch(`${spool.url}/api/videos/demo`, { method: "DELETE" }), 401, "unauthorized");
      const tooLarge = JSON.stringify({ key: "k".repeat(JSON_BODY_LIMIT) });
      await expectError(await fetch(`${spool.url}/api/session`, { method: "POST", headers: { "content-type": "application/json" }, body: tooLarge }), 413, "payload_too_large");
      // The app logs once the answer has gone out, which may be after the client has read it.
      const requests = () => lines().filter((line) => line.msg === "request").map((line) => `${line.method} ${line.path} ${line.route} ${line.status}`);
      for (let i = 0; i < 100 && requests().length < 6; i++) await Bun.sleep(10);
      return requests();
    });
    expect(logged).toEqual(["GET /metrics /metrics 401", "POST /health /health 405", "GET /ready /ready 200", "GET /api/videos unmatched 401", "DELETE /api/videos/demo unmatched 401", "POST /api/session unmatched 413"]);
    const after = await scrape();
    const count = (text: string, labels: string) => sample(text, "spool_http_requests_total", labels);
    const labels = [
      '{route="/metrics",method="GET",status="401"}',
      '{route="/health",method="POST",status="405"}',
      '{route="/ready",method="GET",status="200"}',
      '{route="unmatched",method="GET",status="401"}',
      '{route="unmatched",method="DELETE",status="401"}',
      '{route="unmatched",method="POST",status="413"}',
    ];
    for (const label of labels) expect({ label, counted: count(after, label) - count(before, label) }).toEqual({ label, counted: 1 });
  });
});

describe("the mutation rate limit", () => {
  test("changes beyond MUTATION_RATE_LIMIT a minute get 429 with Retry-After; reads never do", async () => {
    const limited = await startTestSpool({ mutationRateLimit: 5, jobKinds: ["ingest"] });
    try {
      const patch = () => fetch(`${limited.url}/api/videos/demo`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: "again" }) });
      for (let i = 0; i < 5; i++) expect((await patch()).status).toBe(200);
      const refused = await patch();
      await expectError(refused, 429, "rate_limited");
      const wait = Number(refused.headers.get("retry-after"));
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(60);
      // Reads by the hundred: never limited.
      for (let i = 0; i < 100; i++) expect((await fetch(`${limited.url}/api/stream/demo`, { headers: { range: "bytes=0-0" } })).status).toBe(206);
      expect((await fetch(`${limited.url}/api/videos/demo`)).status).toBe(200);
      expect((await fetch(`${limited.url}/api/videos/demo/thumbnail.jpg`, { method: "HEAD" })).status).not.toBe(429);
    } finally {
      await limited.stop();
    }
  });
});

describe("page headers", () => {
  test("Swagger UI gets the same protections as the player pages: CSP, no framing, nosniff, no inline script", async () => {
    for (const path of ["/swagger", "/", "/watch/demo"]) {
      const response = await fetch(spool.url + path);
      expect(response.headers.get("x-frame-options")).toBe("DENY");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      const csp = response.headers.get("content-security-policy")!;
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self';");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(await response.text()).not.toMatch(/<script>(?!<)/);
    }
  });

  test("every JSON answer says nosniff, errors that echo the request included, native routes and Elysia's alike", async () => {
    const answers = [
      ["/api/stream/%3Cscript%3Ealert(1)%3C%2Fscript%3E", {}, 404],
      ["/api/videos", AUTH, 200],
      ["/api/videos", {}, 401],
      ["/api/videos?limit=abc", AUTH, 400],
      ["/api/videos/demo", {}, 200],
      ["/api/videos/%3Cb%3E", AUTH, 400],
      ["/api/nothing-here", AUTH, 404],
      ["/health", {}, 200],
      ["/ready", {}, 200],
      ["/static/%3Cscript%3E.html", {}, 404],
      ["/api/hls/demo/%3Cscript%3E.m3u8", {}, 404],
    ] as const;
    for (const [path, headers, status] of answers) {
      const response = await fetch(spool.url + path, { headers });
      const seen = { path, status: response.status, type: response.headers.get("content-type"), nosniff: response.headers.get("x-content-type-options") };
      expect(seen).toEqual({ path, status, type: expect.stringMatching(/^application\/json/), nosniff: "nosniff" });
    }
  });
});

describe("the process lifecycle", () => {
  test("SIGTERM drains: a slow download in flight finishes with every byte, new connections are refused, exit 0", async () => {
    const dataDir = join(scratch, "drain");
    // A file much larger than the socket buffers, so the download really is in flight.
    const source = await makeLargeVideo(24);
    const ingest = Bun.spawn([process.execPath, "src/cli/ingest.ts", source], { cwd: ROOT, env: { ...process.env, DATA_DIR: dataDir }, stdout: "pipe", stderr: "pipe" });
    const video = JSON.parse(await new Response(ingest.stdout).text()) as VideoJson;
    expect(await ingest.exited).toBe(0);
    const port = freePort();
    const server = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: "1", DATA_DIR: dataDir, TRANSCODE_IN_SERVER: "0", API_KEY: TEST_API_KEY, SEED_DEMO: "0" });
    await server.waitFor(["Spool listening"]);

    const response = await fetch(`http://127.0.0.1:${port}${video.streamUrl}`);
    const reader = response.body!.getReader();
    const hasher = new Bun.CryptoHasher("sha256");
    let received = 0;
    const first = await reader.read();
    hasher.update(first.value!);
    received += first.value!.byteLength;
    server.proc.kill("SIGTERM");
    await server.waitFor(["shutting down"]);
    // The line is logged just before the listener closes: the port is given up within moments,
    // while the download below still has seconds to go.
    let open = true;
    for (const end = Date.now() + 3000; open && Date.now() < end; await Bun.sleep(20)) open = await listening(port);
    expect(open).toBe(false);
    // Read slowly: ~8 MB/s, so the drain lasts seconds.
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hasher.update(value);
      received += value.byteLength;
      await Bun.sleep(2);
    }
    expect(received).toBe(video.size);
    expect(hasher.digest("hex")).toBe(video.sha256!);
    expect(await server.proc.exited).toBe(0);
    expect(server.output()).toContain('"msg":"stopped"');
  });

  test("Ctrl-C twice: a second SIGINT more than a second after the first stops at once (exit 130) instead of waiting out SHUTDOWN_GRACE_MS for a download; two within a moment (npm passing one on) still drain", async () => {
    const dataDir = join(scratch, "second-signal");
    const source = await makeLargeVideo(24);
    const ingest = Bun.spawn([process.execPath, "src/cli/ingest.ts", source], { cwd: ROOT, env: { ...process.env, DATA_DIR: dataDir }, stdout: "pipe", stderr: "pipe" });
    const video = JSON.parse(await new Response(ingest.stdout).text()) as VideoJson;
    expect(await ingest.exited).toBe(0);
    const port = freePort();
    const server = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: "1", DATA_DIR: dataDir, TRANSCODE_IN_SERVER: "0", API_KEY: TEST_API_KEY, SEED_DEMO: "0", SHUTDOWN_GRACE_MS: "60000" });
    await server.waitFor(["Spool listening"]);
    // A download that stalls (a paused browser tab): the drain would wait the whole minute for it.
    const reader = (await fetch(`http://127.0.0.1:${port}${video.streamUrl}`)).body!.getReader();
    expect((await reader.read()).done).toBe(false);
    server.proc.kill("SIGINT");
    await Bun.sleep(50);
    server.proc.kill("SIGINT");
    await server.waitFor(["shutting down"]);
    await Bun.sleep(1500);
    expect(server.proc.exitCode).toBeNull();
    const forced = Date.now();
    server.proc.kill("SIGINT");
    expect(await server.proc.exited).toBe(130);
    expect(Date.now() - forced).toBeLessThan(5000);
    expect(server.output()).toContain("second signal: stopping now");
    await reader.cancel().catch(() => {});
  }, 60_000);

  test("SIGTERM with event streams open (a library page, a video page): they end at once, and the server stops without waiting out SHUTDOWN_GRACE_MS", async () => {
    const port = freePort();
    const server = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: "1", DATA_DIR: join(scratch, "sse-drain"), TRANSCODE_IN_SERVER: "0", API_KEY: TEST_API_KEY, SEED_DEMO: "0", SHUTDOWN_GRACE_MS: "60000" });
    await server.waitFor(["Spool listening"]);
    const base = `http://127.0.0.1:${port}`;
    const created = await fetch(`${base}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": "100" } });
    const id = created.headers.get("spool-video-id")!;
    const streams = await Promise.all([`${base}/api/videos/events`, `${base}/api/videos/${id}/events`].map((url) => fetch(url, { headers: AUTH })));
    const readers = streams.map((response) => {
      expect(response.headers.get("content-type")).toStartWith("text/event-stream");
      return response.body!.getReader();
    });
    for (const reader of readers) expect((await reader.read()).done).toBe(false);
    const stopped = Date.now();
    server.proc.kill("SIGTERM");
    // Each stream ends cleanly (an EventSource then reconnects), and the process exits.
    for (const reader of readers) {
      for (;;) if ((await reader.read()).done) break;
    }
    expect(await server.proc.exited).toBe(0);
    expect(Date.now() - stopped).toBeLessThan(10_000);
    expect(server.output()).not.toContain("grace period over");
  }, 30_000);

  test("WORKERS=2: kill -9 of the primary, and within two seconds nothing serves the port", async () => {
    const port = freePort();
    const server = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: "2", DATA_DIR: join(scratch, "orphans"), TRANSCODE_IN_SERVER: "0", API_KEY: TEST_API_KEY, SEED_DEMO: "0" });
    await server.waitFor(["Spool listening", "worker 1 serving"]);
    const workers = await childrenOf(server.proc.pid);
    expect(workers.length).toBeGreaterThanOrEqual(1);
    server.proc.kill("SIGKILL");
    await server.proc.exited;
    const deadline = Date.now() + 2500;
    while ((await listening(port)) && Date.now() < deadline) await Bun.sleep(100);
    expect(await listening(port)).toBe(false);
    // ...and the workers themselves are gone within a second or two more (they drain first).
    const alive = () => workers.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    while (alive().length && Date.now() < deadline + 2000) await Bun.sleep(100);
    expect(alive()).toEqual([]);
  });

  test("WORKERS=2: the uploads a killed child was receiving are marked failed at once, the primary's own stay uploading", async () => {
    const port = freePort();
    const dataDir = join(scratch, "receivers");
    const server = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: "2", DATA_DIR: dataDir, TRANSCODE_IN_SERVER: "0", API_KEY: TEST_API_KEY, SEED_DEMO: "0" });
    const sockets: import("node:net").Socket[] = [];
    try {
      await server.waitFor(["Spool listening", "worker 1 serving"]);
      const [child] = await childrenOf(server.proc.pid);
      // Half-sent uploads on new connections, until both processes are receiving one.
      const boundary = "----spoolreceivers";
      const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.mp4"\r\nContent-Type: video/mp4\r\n\r\n`;
      const db = () => new Database(join(dataDir, "spool.db"), { readonly: true });
      const receivers = () => {
        const open = db();
        try {
          return open.query<{ id: string; owner: string; status: string }, []>("select id, upload_owner as owner, status from videos").all();
        } finally {
          open.close();
        }
      };
      const pidOf = (owner: string) => Number(owner.split(":").at(-2));
      for (let i = 0; i < 40 && !(receivers().some((r) => pidOf(r.owner) === child) && receivers().some((r) => pidOf(r.owner) === server.proc.pid)); i++) {
        const socket = connect(port, "127.0.0.1");
        socket.on("error", () => {});
        socket.write(`POST /api/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 1000000\r\n\r\n${head}${"x".repeat(1000)}`);
        sockets.push(socket);
        await Bun.sleep(100);
      }
      const before = receivers();
      expect(before.some((r) => pidOf(r.owner) === child)).toBe(true);
      expect(before.some((r) => pidOf(r.owner) === server.proc.pid)).toBe(true);
      process.kill(child!, "SIGKILL");
      const childs = (rows: ReturnType<typeof receivers>) => rows.filter((r) => pidOf(r.owner) === child).map((r) => r.status);
      let after = receivers();
      for (let i = 0; i < 50 && childs(after).includes("uploading"); i++) after = (await Bun.sleep(100), receivers());
      expect(new Set(childs(after))).toEqual(new Set(["failed"]));
      expect(new Set(after.filter((r) => pidOf(r.owner) === server.proc.pid).map((r) => r.status))).toEqual(new Set(["uploading"]));
    } finally {
      for (const socket of sockets) socket.destroy();
      server.proc.kill("SIGTERM");
      await server.proc.exited;
    }
  });

  test("a second Spool on a port another one serves exits non-zero with one line naming the port", async () => {
    const port = freePort();
    const first = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: "2", DATA_DIR: join(scratch, "first"), TRANSCODE_IN_SERVER: "0", API_KEY: TEST_API_KEY, SEED_DEMO: "0" });
    try {
      await first.waitFor(["Spool listening", "worker 1 serving"]);
      for (const workers of ["2", "1"]) {
        const second = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: workers, DATA_DIR: join(scratch, "second"), TRANSCODE_IN_SERVER: "0", API_KEY: TEST_API_KEY });
        expect(await second.proc.exited).toBe(1);
        const lines = second.output().trim().split("\n");
        expect(lines).toHaveLength(1);
        expect(lines[0]).toContain(`port ${port}`);
        expect(lines[0]).not.toContain("    at ");
      }
      // The first one still serves, alone.
      expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);
    } finally {
      first.proc.kill("SIGTERM");
      expect(await first.proc.exited).toBe(0);
    }
  });

  test("metrics are summed across WORKERS: every scrape counts every process's answers", async () => {
    const port = freePort();
    const server = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: "2", DATA_DIR: join(scratch, "metrics"), API_KEY: TEST_API_KEY });
    try {
      await server.waitFor(["Spool listening", "worker 1 serving", "Demo video"]);
      const base = `http://127.0.0.1:${port}`;
      // Fresh connections: the kernel spreads them over both processes.
      for (let i = 0; i < 30; i++) {
        const r = await fetch(`${base}/api/stream/demo`, { headers: { range: "bytes=0-0", connection: "close" } });
        expect(r.status).toBe(206);
        await r.arrayBuffer();
      }
      for (let i = 0; i < 4; i++) {
        const text = await (await fetch(`${base}/metrics`, { headers: { ...AUTH, connection: "close" } })).text();
        expect(sample(text, "spool_stream_responses_total", '{status="206"}')).toBe(30);
      }
    } finally {
      server.proc.kill("SIGTERM");
      expect(await server.proc.exited).toBe(0);
    }
  });

  test("the queue's gauges are the queue's depth, not once per process: every process reads the same database", async () => {
    const port = freePort();
    // No worker anywhere: the demo's processing job waits in the queue.
    const server = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: "2", DATA_DIR: join(scratch, "queue-gauges"), TRANSCODE_IN_SERVER: "0", API_KEY: TEST_API_KEY });
    try {
      await server.waitFor(["Spool listening", "worker 1 serving"]);
      // The start line names the database (a server on the wrong one shows an empty library).
      expect(server.output()).toContain(`"database":"file:${join(scratch, "queue-gauges", "spool.db")}"`);
      const base = `http://127.0.0.1:${port}`;
      // A limit is each process's, not their sum (the children inherit this process's).
      const maxFds = Number(/^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))![1]);
      for (let i = 0; i < 4; i++) {
        const text = await (await fetch(`${base}/metrics`, { headers: { ...AUTH, connection: "close" } })).text();
        expect([sample(text, "spool_ingest_jobs"), sample(text, "spool_transcode_jobs_queued")]).toEqual([1, 0]);
        expect(sample(text, "spool_process_max_fds")).toBe(maxFds);
      }
    } finally {
      server.proc.kill("SIGTERM");
      expect(await server.proc.exited).toBe(0);
    }
  });

  test("a bad variable stops start-up with one line naming it, exit 2", async () => {
    const bad = spawnSpool({ PORT: "3000", SHUTDOWN_GRACE_MS: "soon", DATA_DIR: join(scratch, "bad") });
    expect(await bad.proc.exited).toBe(2);
    expect(bad.output().trim()).toBe('spool: SHUTDOWN_GRACE_MS must be an integer >= 0, got "soon"');
  });

  test("options: --help prints the usage (exit 0), any other is refused (exit 2); neither starts a server nor makes DATA_DIR", async () => {
    const port = freePort();
    const dataDir = join(scratch, "options");
    const run = async (...args: string[]) => {
      const proc = Bun.spawn([process.execPath, "src/index.ts", ...args], { cwd: ROOT, env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", WORKERS: "1", DATA_DIR: dataDir }, stdout: "pipe", stderr: "pipe" });
      const exited = await Promise.race([proc.exited, Bun.sleep(5000).then(() => "still running")]);
      const serving = await listening(port);
      proc.kill("SIGKILL");
      const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      return { exited, serving, stdout: stdout.split("\n")[0], stderr: stderr.split("\n")[0] };
    };
    expect(await run("--help")).toEqual({ exited: 0, serving: false, stdout: expect.stringMatching(/^usage: npm start/), stderr: "" });
    expect(await run("--port", "8080")).toEqual({ exited: 2, serving: false, stdout: "", stderr: "spool: unknown option --port" });
    expect(await run("serve")).toEqual({ exited: 2, serving: false, stdout: "", stderr: expect.stringContaining("Unexpected argument 'serve'") });
    expect(existsSync(dataDir)).toBe(false);
  });
});
