/**
 * WORKERS > 1: a serving process that dies mid-processing leaves its videos `processing`. The
 * primary takes over the jobs of owners that are certainly dead, and leaves live owners alone.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFile, mkdir } from "node:fs/promises";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { mediaFields } from "../../src/modules/ingest/pipeline.ts";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";

const FIXTURE = resolve(import.meta.dir, "../../fixtures/demo.mp4");
let spool: TestSpool;

beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false });
});
afterAll(() => spool?.stop());

/** A video as a crashed (or busy) worker with this pid would have left it: staged, `processing`. */
async function leftProcessingBy(pid: number): Promise<string> {
  const library = spool.ctx.library;
  const row = await library.begin({ originalFilename: "orphan.mp4", title: `owned by ${pid}` });
  const staged = library.storage.stagedPath(row.id);
  await mkdir(library.storage.videoDir(row.id), { recursive: true });
  await copyFile(FIXTURE, staged);
  const info = await spool.ctx.media!.probe(staged);
  await library.markProcessing(row.id, mediaFields(info), `${hostname()}:${pid}:crashed`);
  return row.id;
}

const statusOf = async (id: string) => ((await (await fetch(`${spool.url}/api/videos/${id}`)).json()) as { status: string }).status;

async function waitForStatus(id: string, status: string, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await Bun.sleep(100)) if ((await statusOf(id)) === status) return true;
  return false;
}

test("a dead owner's video is finished by the primary; a live owner's is left alone until it dies", async () => {
  const gone = Bun.spawn(["true"]);
  await gone.exited;
  const busy = Bun.spawn(["sleep", "30"]);
  try {
    const orphan = await leftProcessingBy(gone.pid);
    const owned = await leftProcessingBy(busy.pid);
    expect(await waitForStatus(orphan, "ready", 15_000)).toBe(true);
    const streamed = await fetch(`${spool.url}/api/stream/${orphan}`, { headers: { range: "bytes=0-3" } });
    expect(streamed.status).toBe(206);
    // Two sweeps later, the live owner's video is still its own.
    await Bun.sleep(4500);
    expect(await statusOf(owned)).toBe("processing");
    busy.kill("SIGKILL");
    await busy.exited;
    expect(await waitForStatus(owned, "ready", 15_000)).toBe(true);
  } finally {
    busy.kill("SIGKILL");
  }
}, 60_000);
