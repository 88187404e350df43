/**
 * VideoWatch (src/library/watch.ts), behind GET /api/videos/:id/events: however many streams
 * watch a video, its row is read once per change and once per poll, and a write by another
 * process on the same SQLite file (which tells nobody) is still seen through the poll.
 * A real SQLite file, two real connections to it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type SpoolDb } from "../../src/db/client.ts";
import type { VideoRow } from "../../src/db/schema.ts";
import { Storage } from "../../src/library/storage.ts";
import { VideoLibrary } from "../../src/library/videos.ts";
import { VideoWatch } from "../../src/library/watch.ts";

let dir: string;
let handle: SpoolDb;
let other: SpoolDb;
let library: VideoLibrary;
/** Another process's library on the same file: its writes raise no event here. */
let elsewhere: VideoLibrary;
let reads = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "spool-watch-"));
  handle = await openDatabase(`file:${join(dir, "spool.db")}`);
  other = await openDatabase(`file:${join(dir, "spool.db")}`);
  library = new VideoLibrary(handle, new Storage(dir));
  elsewhere = new VideoLibrary(other, new Storage(dir));
  // Count the reads the watch makes (the real query still runs).
  const get = library.get.bind(library);
  library.get = (id: string) => {
    reads++;
    return get(id);
  };
});

afterAll(async () => {
  await handle?.close();
  await other?.close();
  await rm(dir, { recursive: true, force: true });
});

const until = async (check: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(10);
  }
};

test("many watchers of one video cost one read per poll, and see another process's writes", async () => {
  const { id } = await library.begin({ id: "watched-0123456789ab", originalFilename: "a.mp4", title: "before" });
  const watch = new VideoWatch(library, 100);
  const seen: (VideoRow | undefined)[][] = [];
  const stops = Array.from({ length: 50 }, (_, i) => {
    seen[i] = [];
    return watch.subscribe(id, { row: (row) => seen[i]!.push(row), failed: () => {} });
  });
  expect(watch.size).toBe(1);
  reads = 0;
  const since = performance.now();
  await until(() => reads >= 3);
  await Bun.sleep(200);
  // A poll every 100 ms, one read each, not fifty: never more reads than polls could have run
  // (a stalled test process only delays ticks, so the lower bound is waited for, not timed).
  const polls = Math.ceil((performance.now() - since) / 100);
  expect(reads).toBeLessThanOrEqual(polls + 1);
  expect(seen.every((rows) => rows.length === seen[0]!.length)).toBe(true);

  // Written through the other connection: no event here, the poll finds it.
  await elsewhere.update(id, { title: "after" });
  await until(() => seen.every((rows) => rows.at(-1)?.title === "after"));

  for (const stop of stops) stop();
  expect(watch.size).toBe(0);
  reads = 0;
  await Bun.sleep(250);
  expect(reads).toBe(0);
});

test("a change here is read at once, once for all watchers; a deletion reaches them as undefined", async () => {
  const { id } = await library.begin({ id: "changed-0123456789ab", originalFilename: "b.mp4", title: "one" });
  // No polling (as on PostgreSQL): only events cause reads.
  const watch = new VideoWatch(library, 0);
  const last: (VideoRow | undefined | "none")[] = Array(20).fill("none");
  const stops = last.map((_, i) => watch.subscribe(id, { row: (row) => (last[i] = row), failed: () => {} }));
  reads = 0;
  // Written elsewhere and announced, as a sibling's relay or PostgreSQL's NOTIFY does.
  await elsewhere.update(id, { title: "two" });
  library.events.emit("invalidated", id);
  await until(() => last.every((row) => row !== "none" && row?.title === "two"));
  // One announcement, one read for all twenty watchers.
  expect(reads).toBe(1);

  // A write here is heard at once, with no poll.
  await library.remove(id);
  await until(() => last.every((row) => row === undefined));
  for (const stop of stops) stop();
  expect(watch.size).toBe(0);
});

test("a failed read ends every watcher of that video", async () => {
  const { id } = await library.begin({ id: "failing-0123456789ab", originalFilename: "c.mp4", title: "x" });
  const watch = new VideoWatch(library, 0);
  let failures = 0;
  const stops = [1, 2, 3].map(() => watch.subscribe(id, { row: () => {}, failed: () => failures++ }));
  const get = library.get;
  library.get = () => Promise.reject(new Error("database closing"));
  try {
    library.events.emit("invalidated", id);
    await until(() => failures === 3);
  } finally {
    library.get = get;
  }
  for (const stop of stops) stop();
});
