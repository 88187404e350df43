/**
 * WORKERS > 1 as `npm start` runs it: several real processes on one port (SO_REUSEPORT). A
 * change made through one process is seen at once by all of them, even with a cache TTL of a
 * minute: the processes relay their changes over IPC (src/cluster.ts). On the suite's database
 * (SPOOL_TEST_DATABASE): SQLite, where the relay is the only way, or PostgreSQL, where NOTIFY
 * carries the changes too (the Compose file's WORKERS=2 on PostgreSQL).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { get, slowSource } from "../helpers/http.ts";
import { readEvents } from "./hls-support.ts";
import { AUTH, databaseFor, TEST_API_KEY } from "../helpers/spool.ts";
import { ROOT, freePort, spawnSpool, type SpoolProcess } from "../helpers/process.ts";

let root: string | undefined;
let server: SpoolProcess | undefined;
let port = 0;
afterAll(async () => {
  server?.proc.kill("SIGTERM");
  await server?.proc.exited;
  if (root) await rm(root, { recursive: true, force: true });
});

test("a title changed through one worker is what every worker serves at once, not after the cache's minute", async () => {
  root = await mkdtemp(join(tmpdir(), "spool-workers-"));
  port = freePort();
  const dataDir = join(root, "data");
  server = spawnSpool({ PORT: String(port), HOST: "127.0.0.1", WORKERS: "2", CACHE_TTL_MS: "60000", DATA_DIR: dataDir, DATABASE_URL: await databaseFor(dataDir), API_KEY: TEST_API_KEY, IMPORT_ALLOW_PRIVATE: "1" });
  await server.waitFor(["Spool listening", "worker 1 serving"], 20_000);

  // Fresh connections, which the kernel spreads over both processes; each caches the demo.
  const dispositions = async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 24; i++) {
      const r = await get(port, "/api/stream/demo?download=1", "Range: bytes=0-1\r\n");
      expect(r.status).toBe(206);
      seen.add(r.headers["content-disposition"]!);
    }
    return [...seen];
  };
  expect(await dispositions()).toEqual(['attachment; filename="Spool demo (test pattern).mp4"']);

  const rename = await fetch(`http://127.0.0.1:${port}/api/videos/demo`, {
    method: "PATCH",
    headers: { ...AUTH, "content-type": "application/json", connection: "close" },
    body: JSON.stringify({ title: "Renamed through one worker" }),
  });
  expect(rename.status).toBe(200);
  // Without the relay, the other process would serve the old name for a minute. The relay is a
  // message between processes, so the sibling may take a moment on a loaded machine: asked
  // until both agree, for at most 10 s (a sixth of the TTL).
  const renamed = ['attachment; filename="Renamed through one worker.mp4"'];
  let seen = await dispositions();
  for (const end = Date.now() + 10_000; Date.now() < end && !Bun.deepEquals(seen, renamed); await Bun.sleep(50)) seen = await dispositions();
  expect(seen).toEqual(renamed);
}, 60_000);

test("a URL import's download progress reaches event streams on every worker, not only the one that downloads", async () => {
  expect(port).toBeGreaterThan(0);
  const bytes = new Uint8Array(await Bun.file(join(ROOT, "fixtures/demo.mp4")).arrayBuffer());
  // A slow source: 8 KiB every 40 ms, so the download lasts over a second.
  const source = slowSource(bytes, 8 * 1024, 40);
  try {
    const created = await fetch(`http://127.0.0.1:${port}/api/videos`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json", connection: "close" },
      body: JSON.stringify({ url: `http://127.0.0.1:${source.port}/slow.mp4` }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    // Eight streams on eight connections, spread by the kernel over both processes (all eight on
    // one process: 1 in 128). The download runs in the primary's worker; every stream hears it.
    const streams = Array.from({ length: 8 }, () => readEvents(`http://127.0.0.1:${port}/api/videos/${id}/events`, (e) => e.event === "import", 15_000));
    const events = (await Promise.all(streams)).map((r) => JSON.parse(r.events.at(-1)!.data)) as { id: string; bytes: number }[];
    for (const event of events) expect(event.id).toBe(id);
  } finally {
    source.stop(true);
  }
}, 60_000);
