/**
 * The bundle `npm start` and the Dockerfile run (scripts/build.ts → dist/): built, started as
 * a real WORKERS=2 cluster, and checked for everything that reads files at run time (the
 * migrations, the demo fixture, the player's and Swagger's assets, packages' browser builds),
 * which is what a bundle breaks when a module resolves a path from its own directory.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AUTH, TEST_API_KEY } from "../helpers/spool.ts";
import { ROOT, childrenOf, freePort, spawnCaptured, spawnSpool, type SpoolProcess } from "../helpers/process.ts";

let scratch = "";
let server: SpoolProcess | undefined;
let base = "";

beforeAll(async () => {
  const build = Bun.spawnSync([process.execPath, join(ROOT, "scripts/build.ts")], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  expect(build.stderr.toString()).toBe("");
  expect(build.exitCode).toBe(0);
  scratch = await mkdtemp(join(tmpdir(), "spool-bundle-"));
  const port = freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: "2", DATA_DIR: join(scratch, "data"), API_KEY: TEST_API_KEY }, { entry: "dist/index.js" });
  await server.waitFor(["Spool listening", "worker 1 serving"], 30_000);
}, 60_000);

afterAll(async () => {
  server?.proc.kill("SIGTERM");
  await server?.proc.exited;
  await rm(scratch, { recursive: true, force: true });
});

async function bytes(path: string, init?: RequestInit): Promise<{ status: number; type: string | null; body: Buffer }> {
  const response = await fetch(base + path, init);
  return { status: response.status, type: response.headers.get("content-type"), body: Buffer.from(await response.arrayBuffer()) };
}

test("the cluster runs the bundle: the primary and its worker are dist/index.js", async () => {
  const pid = server!.proc.pid;
  const [child] = await childrenOf(pid);
  for (const p of [pid, child!]) {
    const argv = (await readFile(`/proc/${p}/cmdline`, "utf8")).split("\0");
    expect(argv[1]).toBe(join(ROOT, "dist/index.js"));
  }
});

test("the migrated database and the demo fixture: the demo becomes ready and streams its exact bytes", async () => {
  const fixture = await readFile(join(ROOT, "fixtures/demo.mp4"));
  const deadline = Date.now() + 30_000;
  let video = await bytes("/api/stream/demo");
  while (video.status !== 200 && Date.now() < deadline) {
    await Bun.sleep(200);
    video = await bytes("/api/stream/demo");
  }
  expect(video.status).toBe(200);
  // Ingest may have remuxed it (faststart): the size and type are the fixture's either way.
  expect(video.type).toBe("video/mp4");
  expect(video.body.length).toBeGreaterThan(0);
  const list = (await (await fetch(`${base}/api/videos`, { headers: AUTH })).json()) as { items: { id: string; status: string; sourceSize: number }[] };
  expect(list.items.map((v) => [v.id, v.status, v.sourceSize])).toEqual([["demo", "ready", fixture.length]]);
  const range = await bytes("/api/stream/demo", { headers: { range: "bytes=0-99" } });
  expect(range.status).toBe(206);
  expect(range.body.equals(video.body.subarray(0, 100))).toBe(true);
}, 40_000);

test("the player's own assets and hls.js come from src/ and node_modules, byte for byte", async () => {
  const page = await bytes("/watch/demo");
  expect(page.status).toBe(200);
  expect(page.body.toString()).toContain('src="/assets/player.js"');
  for (const name of ["player.js", "library.js", "spool.css"]) {
    const asset = await bytes(`/assets/${name}`);
    expect([name, asset.status]).toEqual([name, 200]);
    expect(asset.body.equals(await readFile(join(ROOT, "src/modules/player/assets", name)))).toBe(true);
  }
  const hls = await bytes("/assets/hls.min.js");
  expect(hls.status).toBe(200);
  expect(hls.body.equals(await readFile(join(ROOT, "node_modules/hls.js/dist/hls.min.js")))).toBe(true);
});

test("Swagger UI is served offline: its page, its initializer from src/, its bundle from node_modules", async () => {
  expect((await bytes("/swagger")).status).toBe(200);
  const init = await bytes("/swagger/assets/swagger-init.js");
  expect(init.status).toBe(200);
  expect(init.body.equals(await readFile(join(ROOT, "src/modules/openapi/swagger-init.js")))).toBe(true);
  const ui = await bytes("/swagger/assets/swagger-ui-bundle.js");
  expect(ui.status).toBe(200);
  expect(ui.body.equals(await readFile(join(ROOT, "node_modules/swagger-ui-dist/swagger-ui-bundle.js")))).toBe(true);
  const spec = (await (await fetch(`${base}/swagger/json`)).json()) as { paths: Record<string, unknown> };
  expect(Object.keys(spec.paths)).toContain("/api/stream/{id}");
});

test("request validation works in the bundle as from source (Elysia compiles it from generated code, which renamed identifiers broke)", async () => {
  const error = async (path: string, init?: RequestInit) => {
    const response = await fetch(base + path, { ...init, headers: { ...AUTH, ...init?.headers } });
    const body = (await response.json()) as { error?: { code: string; message: string } };
    return [response.status, body.error?.code, body.error?.message];
  };
  // Several of each: the cluster's two processes share the port, and the child builds its app lazily.
  for (let i = 0; i < 6; i++) {
    expect(await error("/api/videos?limit=0")).toEqual([400, "bad_request", "query limit: must be an integer from 1 to 200"]);
    expect(await error("/api/videos?limit=201")).toEqual([400, "bad_request", "query limit: must be an integer from 1 to 200"]);
    expect(await error("/api/videos/demo/thumbnail.jpg?t=1&width=5")).toEqual([400, "bad_request", "query width: must be an integer from 16 to 3840"]);
    const patch = await error("/api/videos/demo", { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ title: 5 }) });
    expect(patch.slice(0, 2)).toEqual([400, "bad_request"]);
    const page = await fetch(`${base}/api/videos?limit=1`, { headers: AUTH });
    expect(page.status).toBe(200);
    expect(((await page.json()) as { items: unknown[] }).items).toHaveLength(1);
  }
});

test("a lazily loaded chunk (tus, in its own chunk) loads on first use", async () => {
  const response = await fetch(`${base}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": "10" } });
  expect(response.status).toBe(201);
  expect(response.headers.get("location")).toContain("/api/uploads/");
});

test("`npm start`, as the README says: builds, serves, and stops cleanly on SIGTERM (the script execs the server)", async () => {
  const port = freePort();
  const npm = spawnCaptured(["npm", "start"], { PORT: String(port), HOST: "127.0.0.1", WORKERS: "1", SEED_DEMO: "0", DATA_DIR: join(scratch, "npm-start"), API_KEY: TEST_API_KEY });
  await npm.waitFor(["Spool listening"], 30_000);
  expect(npm.output()).toContain("spool: built dist/");
  expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  npm.proc.kill("SIGTERM");
  expect(await npm.proc.exited).toBe(0);
  expect(npm.output()).toContain('"msg":"stopped"');
  expect(await fetch(`http://127.0.0.1:${port}/health`).then(() => "answered", () => "closed")).toBe("closed");
}, 60_000);

test("a rebuild keeps other builds' files for a day, then removes them", async () => {
  const dist = join(ROOT, "dist");
  const old = join(dist, "chunk-oldbuild0.js");
  const recent = join(dist, "chunk-recentbuild0.js");
  await Bun.write(old, "// an old build's chunk");
  await Bun.write(recent, "// a recent build's chunk");
  const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
  await utimes(old, twoDaysAgo, twoDaysAgo);
  const build = Bun.spawnSync([process.execPath, join(ROOT, "scripts/build.ts")], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  expect(build.exitCode).toBe(0);
  expect(await Bun.file(old).exists()).toBe(false);
  expect(await Bun.file(recent).exists()).toBe(true);
  await rm(recent);
  // The cluster started from the bundle before the rebuild still answers (its files stayed).
  expect((await fetch(`${base}/api/stream/demo`, { headers: { range: "bytes=0-1" } })).status).toBe(206);
});
