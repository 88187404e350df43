/**
 * A serving process holds only the modules of what it has done (issue 15: every loaded module
 * costs resident memory, and a full collection marks all of them). A real `bun src/index.ts`,
 * its module registry read by bench/lib/heap-probe.ts (preloaded; SIGUSR2 writes a report):
 * after streaming, answering the API and logging JSON it has not loaded @tus/server, jose,
 * pino-pretty, PostgreSQL's Drizzle dialect, the URL importer's downloader or prom-client's
 * Pushgateway; the first tus upload, the first token mint and the first URL import then load
 * what they need, and work (the Pushgateway never).
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AUTH, TEST_API_KEY } from "../helpers/spool.ts";

const ROOT = resolve(import.meta.dir, "../..");
let root: string | undefined;
let server: ReturnType<typeof Bun.spawn> | undefined;
afterAll(async () => {
  server?.kill("SIGTERM");
  await server?.exited;
  if (root) await rm(root, { recursive: true, force: true });
});

/** What each lazily loaded dependency's modules look like in the registry. */
const LAZY = {
  tus: /node_modules\/@tus\/(server|file-store)\//,
  jose: /node_modules\/jose\//,
  pinoPretty: /node_modules\/pino-pretty\//,
  // (drizzle-orm's relations.js loads pg-core in any process; the Bun.SQL driver and our PostgreSQL schema are the dialect's own)
  postgresDialect: /node_modules\/drizzle-orm\/bun-sql\/|\/src\/db\/schema\/pg\.ts$/,
  // node:http, node:https and node:zlib come with these two (src/metrics/prom-client.ts)
  downloader: /\/src\/media\/import\/download\.ts$/,
  pushgateway: /node_modules\/prom-client\/lib\/pushgateway\.js$/,
};

function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

async function loaded(pid: number, out: string): Promise<Record<keyof typeof LAZY, boolean>> {
  await rm(out, { force: true });
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 200 && !existsSync(out); i++) await Bun.sleep(25);
  await Bun.sleep(50);
  const { paths } = JSON.parse(await readFile(out, "utf8")) as { paths: string[] };
  expect(paths.some((p) => p.includes("/src/server.ts"))).toBe(true);
  return Object.fromEntries(Object.entries(LAZY).map(([name, pattern]) => [name, paths.some((p) => pattern.test(p))])) as Record<keyof typeof LAZY, boolean>;
}

test("a serving process loads tus, jose, pino-pretty, the PostgreSQL dialect and the URL downloader only when it needs them, and prom-client's Pushgateway never", async () => {
  root = await mkdtemp(join(tmpdir(), "spool-lazy-"));
  const out = join(root, "probe.json");
  const port = freePort();
  let output = "";
  server = Bun.spawn([process.execPath, "--preload", join(ROOT, "bench/lib/heap-probe.ts"), join(ROOT, "src/index.ts")], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", WORKERS: "1", LOG_FORMAT: "json", IMPORT_ALLOW_PRIVATE: "1", DATA_DIR: join(root, "data"), API_KEY: TEST_API_KEY, SPOOL_HEAP_PROBE_OUT: out },
    stdout: "pipe",
    stderr: "pipe",
  });
  for (const stream of [server.stdout, server.stderr] as ReadableStream<Uint8Array>[]) {
    void (async () => {
      for await (const chunk of stream) output += new TextDecoder().decode(chunk);
    })();
  }
  const deadline = Date.now() + 30_000;
  while (!output.includes("Spool listening")) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`Spool did not start: ${output}`);
    await Bun.sleep(50);
  }
  const base = `http://127.0.0.1:${port}`;

  // Streaming, the library API, metrics and the logs (JSON): none of the lazy dependencies.
  const probe = await fetch(`${base}/api/stream/demo`, { headers: { range: "bytes=0-1" } });
  expect(probe.status).toBe(206);
  await probe.arrayBuffer();
  const list = await fetch(`${base}/api/videos`, { headers: AUTH });
  expect(list.status).toBe(200);
  await list.arrayBuffer();
  expect((await fetch(`${base}/metrics`, { headers: AUTH })).status).toBe(200);
  expect(await loaded(server.pid, out)).toEqual({ tus: false, jose: false, pinoPretty: false, postgresDialect: false, downloader: false, pushgateway: false });

  // The first tus creation and the first token mint load theirs, and answer as always.
  const created = await fetch(`${base}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": "10" } });
  expect(created.status).toBe(201);
  expect(created.headers.get("location")).toContain("/api/uploads/");
  const minted = await fetch(`${base}/api/videos/demo/tokens`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: "{}" });
  expect(minted.status).toBe(201);
  const { token } = (await minted.json()) as { token: string };
  expect(token.split(".")).toHaveLength(3);
  expect(await loaded(server.pid, out)).toEqual({ tus: true, jose: true, pinoPretty: false, postgresDialect: false, downloader: false, pushgateway: false });

  // The first URL import loads the downloader, and the video arrives byte for byte.
  const demo = await Bun.file(join(ROOT, "fixtures/demo.mp4")).bytes();
  const source = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(demo, { headers: { "content-type": "video/mp4" } }) });
  try {
    const imported = await fetch(`${base}/api/videos`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ url: `http://127.0.0.1:${source.port}/demo.mp4` }) });
    expect(imported.status).toBe(201);
    const { id } = (await imported.json()) as { id: string };
    let status = "";
    for (let i = 0; i < 600 && status !== "ready" && status !== "failed"; i++) {
      await Bun.sleep(50);
      status = ((await (await fetch(`${base}/api/videos/${id}`, { headers: AUTH })).json()) as { status: string }).status;
    }
    expect(status).toBe("ready");
    expect(new Uint8Array(await (await fetch(`${base}/api/stream/${id}`)).arrayBuffer())).toEqual(demo);
  } finally {
    source.stop(true);
  }
  expect(await loaded(server.pid, out)).toEqual({ tus: true, jose: true, pinoPretty: false, postgresDialect: false, downloader: true, pushgateway: false });
}, 60_000);

/** The processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of require("node:fs").readdirSync("/proc") as string[]) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = require("node:fs").readFileSync(`/proc/${entry}/stat`, "utf8") as string;
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function modules(pid: number, out: string): Promise<string[]> {
  const file = out.replace("%p", String(pid));
  await rm(file, { force: true });
  process.kill(pid, "SIGUSR2");
  // The report forces full collections first: seconds on a loaded machine (it once took over 5).
  for (let i = 0; i < 800 && !existsSync(file); i++) await Bun.sleep(25);
  return (JSON.parse(await readFile(file, "utf8")) as { paths: string[] }).paths;
}

const ELYSIA = /node_modules\/elysia\/|\/src\/web\.ts$/;
/** The environment's schemas (src/env.ts, TypeBox): the primary reads the configuration, its children are given it. */
const SCHEMAS = /node_modules\/@sinclair\/typebox\/|\/src\/env\.ts$/;
const holds = (paths: string[]) => ({ elysia: paths.some((p) => ELYSIA.test(p)), schemas: paths.some((p) => SCHEMAS.test(p)) });

test("a WORKERS child streams, serves HLS files and answers /health, /ready and /metrics without the Elysia app or the environment's schemas, and builds the app on its first other request", async () => {
  const dir = await mkdtemp(join(tmpdir(), "spool-lean-"));
  const out = join(dir, "probe-%p.json");
  await Bun.write(join(dir, "static", "hello.txt"), "hello");
  const port = freePort();
  let output = "";
  // BUN_OPTIONS reaches the child too (it inherits the environment): both are probed.
  const primary = Bun.spawn([process.execPath, join(ROOT, "src/index.ts")], {
    cwd: ROOT,
    env: { ...process.env, BUN_OPTIONS: `--preload ${join(ROOT, "bench/lib/heap-probe.ts")}`, PORT: String(port), HOST: "127.0.0.1", WORKERS: "2", LOG_FORMAT: "json", DATA_DIR: join(dir, "data"), STATIC_DIR: join(dir, "static"), API_KEY: TEST_API_KEY, SPOOL_HEAP_PROBE_OUT: out },
    stdout: "pipe",
    stderr: "pipe",
  });
  try {
    for (const stream of [primary.stdout, primary.stderr] as ReadableStream<Uint8Array>[]) {
      void (async () => {
        for await (const chunk of stream) output += new TextDecoder().decode(chunk);
      })();
    }
    const deadline = Date.now() + 30_000;
    while (!(output.includes("Spool listening") && output.includes("worker 1 serving"))) {
      if (Date.now() > deadline || primary.exitCode !== null) throw new Error(`Spool did not start: ${output}`);
      await Bun.sleep(50);
    }
    const [child] = childrenOf(primary.pid);
    expect(child).toBeDefined();
    const base = `http://127.0.0.1:${port}`;
    // The primary serves every route from the start; the child has not loaded Elysia, nor the
    // schemas its configuration was read with (the primary gave it the result).
    expect(holds(await modules(primary.pid, out))).toEqual({ elysia: true, schemas: true });
    expect(holds(await modules(child!, out))).toEqual({ elysia: false, schemas: false });

    // New connections, spread by the kernel over both processes: the child streams (its
    // counter moves) and still holds no Elysia.
    const streamed = async () => {
      for (let i = 0; i < 40; i++) {
        const r = await fetch(`${base}/api/stream/demo`, { headers: { range: "bytes=0-1", connection: "close" } });
        expect(r.status).toBe(206);
        expect(r.headers.get("x-request-id")).toBeTruthy();
        await r.arrayBuffer();
      }
    };
    await streamed();
    expect(holds(await modules(child!, out))).toEqual({ elysia: false, schemas: false });
    // Static files are a native route too (src/native-routes.ts): served without Elysia, whatever the Host.
    for (let i = 0; i < 40; i++) {
      const r = await fetch(`${base}/static/hello.txt`, { headers: { connection: "close", ...(i % 2 ? { host: "web" } : {}) } });
      expect(r.status).toBe(200);
      expect(await r.text()).toBe("hello");
      expect(r.headers.get("x-request-id")).toBeTruthy();
    }
    expect(holds(await modules(child!, out))).toEqual({ elysia: false, schemas: false });

    // The operations probes are native routes too: a load balancer's /health and /ready and a
    // Prometheus scrape of /metrics reach every process and must not build the app. The child's
    // own log lines (pid) show it answered each of them; it still holds no Elysia.
    const answeredByChild = (route: string, status: number) =>
      output.split("\n").some((line) => line.includes(`"pid":${child}`) && line.includes(`"route":"${route}"`) && line.includes(`"status":${status}`));
    // TRACE too: Bun's router knows it, so without a handler of the route's own it would fall
    // through to the app and build it.
    const probes: [string, string, Record<string, string>, number][] = [
      ["GET", "/health", {}, 200],
      ["GET", "/ready", {}, 200],
      ["GET", "/metrics", {}, 401],
      ["GET", "/metrics", AUTH, 200],
      ["TRACE", "/health", {}, 405],
    ];
    // The server's request lines are written in 4 KiB batches or every second (src/lib/log.ts):
    // ask until the child's line has come, for a few seconds at most.
    const until = (seen: () => boolean) => {
      const deadline = Date.now() + 10_000;
      return () => !seen() && Date.now() < deadline;
    };
    for (const [method, path, headers, status] of probes) {
      for (const more = until(() => answeredByChild(path, status)); more(); ) {
        const r = await fetch(`${base}${path}`, { method, headers: { ...headers, connection: "close" } });
        expect(r.status).toBe(status);
        if (path === "/metrics" && status === 200) expect(await r.text()).toContain("spool_stream_responses_total");
        else await r.arrayBuffer();
        await Bun.sleep(20);
      }
      expect({ method, path, status, answeredByChild: answeredByChild(path, status), ...holds(await modules(child!, out)) }).toEqual({ method, path, status, answeredByChild: true, elysia: false, schemas: false });
    }

    // So are the HLS ladder's files, which every HLS player asks every process for: once the
    // demo's ladder is built (by the primary's worker), the child serves its playlists.
    const master = `${base}/api/hls/demo/master.m3u8`;
    const ladderDeadline = Date.now() + 60_000;
    while ((await fetch(master, { headers: { connection: "close" } }).then(async (r) => (await r.arrayBuffer(), r.status))) !== 200) {
      if (Date.now() > ladderDeadline) throw new Error("the demo's HLS ladder was not built within 60 s");
      await Bun.sleep(250);
    }
    for (const more = until(() => answeredByChild("/api/hls/:id/:name", 200)); more(); ) {
      const r = await fetch(master, { headers: { connection: "close" } });
      expect(r.status).toBe(200);
      expect(await r.text()).toStartWith("#EXTM3U");
      await Bun.sleep(20);
    }
    expect(answeredByChild("/api/hls/:id/:name", 200)).toBe(true);
    expect(holds(await modules(child!, out))).toEqual({ elysia: false, schemas: false });

    // Another request, until one has reached the child (the first, which builds the app, is
    // answered by the app's own router): answered as the primary would, whatever the Host (a
    // compose service name such as `api` is shorter than Elysia 1.4 assumes by default).
    let built = false;
    for (let i = 0; i < 60 && !built; i++) {
      const list = await fetch(`${base}/api/videos`, { headers: { ...AUTH, connection: "close", host: "api" } });
      expect(list.status).toBe(200);
      expect(((await list.json()) as { items: { id: string }[] }).items.some((v) => v.id === "demo")).toBe(true);
      built = holds(await modules(child!, out)).elysia;
    }
    expect(built).toBe(true);
    for (let i = 0; i < 6; i++) {
      const [missing, health] = await Promise.all([fetch(`${base}/no-such-page`, { headers: { connection: "close" } }), fetch(`${base}/health`, { headers: { connection: "close" } })]);
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: "ok" });
    }
    // And it still streams, now through the adopted server.
    await streamed();
  } finally {
    primary.kill("SIGTERM");
    expect(await primary.exited).toBe(0);
    await rm(dir, { recursive: true, force: true });
  }
}, 90_000);
