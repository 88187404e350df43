/**
 * Kept descriptors in a running Spool (src/files/open-files.ts): short ranges of a ready video
 * go out on one descriptor kept open, shown on /metrics, which a change to the video that leaves
 * its bytes alone does not retire, and a deleted video's descriptor lets go of its file at once
 * (its disk space comes back while requests are in flight) and is closed once nothing is in
 * flight. /static files use the same pool.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { descriptorsOn, settledDescriptorsOn } from "../helpers/descriptors.ts";
import { AUTH, startTestSpool, useTestStorage, type TestSpool } from "../helpers/spool.ts";

useTestStorage("local");
let spool: TestSpool;
let path: string;

beforeAll(async () => {
  spool = await startTestSpool();
  path = spool.ctx.library.absolutePath((await spool.ctx.library.get("demo"))!);
});
afterAll(() => spool?.stop());

/** A GET of a 64 MiB static file whose client stops reading: in flight until destroyed. */
async function stalledDownload(): Promise<Socket> {
  writeFileSync(join(spool.staticDir, "stalled.bin"), Buffer.alloc(64 * 1024 * 1024, 7));
  const socket = connect(spool.port, "127.0.0.1");
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  let received = 0;
  const first = Promise.withResolvers<void>();
  socket.on("data", (chunk: Buffer) => {
    received += chunk.length;
    first.resolve();
    if (received > 256 * 1024) socket.pause();
  });
  socket.write("GET /static/stalled.bin HTTP/1.1\r\nHost: x\r\n\r\n");
  await first.promise;
  return socket;
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${spool.url}/metrics`, { headers: AUTH })).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1]);
}

test("short ranges of a ready video share one kept descriptor; deleting the video lets go of its file at once, and closes it once quiet", async () => {
  const bytes = readFileSync(path);
  for (const [start, end] of [[1000, 1999], [0, 1], [70_000, 135_535], [0, 99], [5, 5]] as const) {
    const response = await fetch(`${spool.url}/api/stream/demo`, { headers: { range: `bytes=${start}-${end}` } });
    expect(response.status).toBe(206);
    expect(Buffer.from(await response.arrayBuffer()).equals(bytes.subarray(start, end + 1))).toBe(true);
  }
  expect(await metric("spool_open_files")).toBe(1);
  expect(descriptorsOn(path)).toBe(1);

  // A change that leaves the bytes alone (a title here; an HLS transcode's progress too) keeps
  // the descriptor: retiring one per change would pile them up while anyone is watching.
  const kept = spool.ctx.catalog.descriptors!;
  expect((await fetch(`${spool.url}/api/videos/demo`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: "renamed" }) })).status).toBe(200);
  await Bun.sleep(300); // the catalog's look at the changed row is asynchronous
  const again = await fetch(`${spool.url}/api/stream/demo`, { headers: { range: "bytes=2000-2999" } });
  expect(Buffer.from(await again.arrayBuffer()).equals(bytes.subarray(2000, 3000))).toBe(true);
  expect(kept.openCount).toBe(1);
  expect(kept.retiredCount).toBe(0);
  expect(descriptorsOn(path)).toBe(1);

  // A download that stops reading keeps a request in flight, as on any busy site.
  const stalled = await stalledDownload();
  try {
    expect((await fetch(`${spool.url}/api/videos/demo`, { method: "DELETE", headers: AUTH })).status).toBe(204);
    expect(existsSync(path)).toBe(false);
    // Retired at the deletion, and its deleted file let go at once (its disk space returns)
    // though the close waits for a moment with nothing in flight.
    const deadline = Date.now() + 5000;
    while (descriptorsOn(path) > 0 && Date.now() < deadline) await Bun.sleep(50);
    expect(descriptorsOn(path)).toBe(0);
    expect(await metric("spool_open_files")).toBe(0);
    expect(await metric("spool_open_files_retired")).toBe(1);
    expect(kept.releasedCount).toBe(1);
  } finally {
    stalled.destroy();
  }
  // Closed at the first close check with nothing in flight (1 s).
  const deadline = Date.now() + 5000;
  while (kept.retiredCount > 0 && Date.now() < deadline) await Bun.sleep(50);
  expect(await metric("spool_open_files_retired")).toBe(0);
  expect((await fetch(`${spool.url}/api/stream/demo`, { headers: { range: "bytes=1000-1999" } })).status).toBe(404);
});

test("/static files: short ranges past the start go out on a kept descriptor too, exact bytes", async () => {
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 7);
  for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(bytes.length, i + 65536)));
  const file = join(spool.staticDir, "kept.bin");
  writeFileSync(file, bytes);
  for (const [start, end] of [[100, 65_635], [0, 99], [2_000_000, 2_000_009], [0, 1], [7, 7]] as const) {
    const response = await fetch(`${spool.url}/static/kept.bin`, { headers: { range: `bytes=${start}-${end}` } });
    expect(response.status).toBe(206);
    expect(Buffer.from(await response.arrayBuffer()).equals(bytes.subarray(start, end + 1))).toBe(true);
  }
  // Settled: Bun closes the descriptors of the answers by path (those from 0) a moment later.
  expect(await settledDescriptorsOn(file, 1)).toBe(1);
});
