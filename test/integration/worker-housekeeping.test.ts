/**
 * `bun run worker` with a DATA_DIR of its own (STORAGE=s3, another machine): nobody else cleans
 * it, so the worker sweeps what its killed predecessors left in tmp/ (a source copy and a partial
 * ladder per transcode) and the working copies of videos that are no longer processed here.
 */
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { testS3 } from "../helpers/spool.ts";

setDefaultTimeout(60_000);

const WORKER_CLI = resolve(import.meta.dir, "../../src/cli/worker.ts");
const root = await mkdtemp(join(tmpdir(), "spool-worker-housekeeping-"));
afterAll(() => rm(root, { recursive: true, force: true }));

test("a worker sweeps a dead worker's tmp/ at start, and working copies of videos it no longer processes", async () => {
  const s3 = await testS3();
  const dataDir = join(root, "worker");
  // A pid that certainly no longer runs.
  const gone = Bun.spawn(["true"]);
  await gone.exited;
  const deadTmp = join(dataDir, "tmp", `${hostname()}:${gone.pid}:0badc0de`);
  await mkdir(join(deadTmp, ".hls-tmp-4-1-6b3867d9", "720p"), { recursive: true });
  await writeFile(join(deadTmp, ".hls-tmp-4-1-6b3867d9.source"), "a copy of a source");
  // The working copy of a video the database does not have (processed elsewhere, or deleted).
  const copy = join(dataDir, "videos", "AAAAAAAAAAAAAAAAAAAAAA");
  await mkdir(copy, { recursive: true });
  await writeFile(join(copy, "incoming"), "received bytes");
  const proc = Bun.spawn([process.execPath, WORKER_CLI], {
    env: { ...process.env, ...s3.env, STORAGE: "s3", DATA_DIR: dataDir, DATABASE_URL: `file:${join(root, "spool.db")}`, LOG_FORMAT: "json", TRANSCODE_POLL_MS: "100" },
    stdout: "ignore",
    stderr: "ignore",
  });
  try {
    let swept = false;
    for (let i = 0; i < 300 && !swept; i++) {
      await Bun.sleep(100);
      swept = !existsSync(deadTmp) && !existsSync(copy);
    }
    // Before: both stayed for ever (only a server's primary swept, and only its own DATA_DIR).
    expect({ tmp: existsSync(deadTmp), copy: existsSync(copy) }).toEqual({ tmp: false, copy: false });
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
  }
});
