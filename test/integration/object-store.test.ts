/**
 * ObjectStore against a real s3rver over HTTP (and the local-disk store on the same cases):
 * exact bytes for every range, multipart puts, prefix deletes, listing, presigned URLs, and
 * StorageUnavailable (never a hang) while the bucket is down, recovered when it is back.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalStore } from "../../src/storage/local-store.ts";
import { ObjectNotFound, StorageUnavailable, type ObjectStore } from "../../src/storage/object-store.ts";
import { S3Store } from "../../src/storage/s3-store.ts";
import { putLadder } from "../../src/modules/hls/worker.ts";
import { startS3rver, type S3rver } from "../helpers/s3.ts";

/** Deterministic bytes that differ at every offset mod 251 and between files. */
function pattern(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7 + (i >>> 11)) % 251;
  return bytes;
}

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

let s3: S3rver;
let work: string;
let stores: [string, ObjectStore][];
const SMALL = pattern(100_000, 1);

beforeAll(async () => {
  s3 = await startS3rver();
  work = await mkdtemp(join(tmpdir(), "spool-object-store-"));
  await writeFile(join(work, "small.bin"), SMALL);
  stores = [
    ["s3", new S3Store({ ...s3.options, requestTimeoutMs: 2000, partSize: 5 * 1024 * 1024 })],
    ["local", new LocalStore(join(work, "data"))],
  ];
}, 30_000);

afterAll(async () => {
  await s3?.dispose();
  await rm(work, { recursive: true, force: true });
});

const each = (name: string, fn: (store: ObjectStore) => Promise<void>, timeout = 20_000) => {
  for (const kind of ["s3", "local"]) test(`${kind}: ${name}`, () => fn(stores.find(([k]) => k === kind)![1]), timeout);
};

describe("ObjectStore", () => {
  each("put, stat, read whole and ranges with exact bytes", async (store) => {
    await store.putFile("videos/a/source.mp4", join(work, "small.bin"));
    expect((await store.stat("videos/a/source.mp4"))?.size).toBe(SMALL.length);
    expect(await store.exists("videos/a/source.mp4")).toBe(true);
    expect(await store.stat("videos/a/nothing")).toBeNull();
    expect(await store.exists("videos/a/nothing")).toBe(false);

    const whole = await store.read("videos/a/source.mp4", { start: 0, end: SMALL.length - 1 });
    expect(await bytesOf(whole.stream)).toEqual(SMALL);
    const cases: [{ start: number; end: number } | { suffix: number }, number, number][] = [
      [{ start: 0, end: 0 }, 0, 0],
      [{ start: 0, end: 1 }, 0, 1],
      [{ start: 12_345, end: 65_535 }, 12_345, 65_535],
      [{ start: 99_999, end: 99_999 }, 99_999, 99_999],
      [{ start: 90_000, end: 10_000_000 }, 90_000, 99_999], // end clamped to the object
      [{ suffix: 500 }, 99_500, 99_999], // suffixes are asked as absolute offsets
      [{ suffix: 1 }, 99_999, 99_999],
      [{ suffix: 1_000_000 }, 0, 99_999], // longer than the object: all of it
    ];
    for (const [range, start, end] of cases) {
      const body = await store.read("videos/a/source.mp4", range);
      expect([body.start, body.end, body.size]).toEqual([start, end, SMALL.length]);
      expect(await bytesOf(body.stream)).toEqual(SMALL.subarray(start, end + 1));
    }
    // With the size known, a suffix needs no HEAD and gives the same bytes.
    const tail = await store.read("videos/a/source.mp4", { suffix: 10 }, { size: SMALL.length });
    expect(await bytesOf(tail.stream)).toEqual(SMALL.subarray(SMALL.length - 10));
  });

  each("missing objects and ranges outside the object", async (store) => {
    await store.putFile("videos/r/source.mp4", join(work, "small.bin"));
    expect(store.read("videos/r/none", { start: 0, end: 9 })).rejects.toBeInstanceOf(ObjectNotFound);
    expect(store.read("videos/r/none", { suffix: 9 })).rejects.toBeInstanceOf(ObjectNotFound);
    expect(store.read("videos/r/source.mp4", { start: SMALL.length, end: SMALL.length + 9 })).rejects.toBeInstanceOf(RangeError);
    expect(store.read("videos/r/source.mp4", { suffix: 0 })).rejects.toBeInstanceOf(RangeError);
    expect(() => store.stat("../etc/passwd")).toThrow(RangeError);
    expect(() => store.stat("videos//x")).toThrow(RangeError);
  });

  each("an empty file", async (store) => {
    await writeFile(join(work, "empty.bin"), "");
    await store.putFile("videos/e/poster.jpg", join(work, "empty.bin"));
    expect((await store.stat("videos/e/poster.jpg"))?.size).toBe(0);
  });

  each(
    "a file larger than the part size goes up in parts and comes back exactly",
    async (store) => {
      const big = pattern(13 * 1024 * 1024 + 12_345, 3); // three 5 MiB parts, the last one short
      await writeFile(join(work, "big.bin"), big);
      await store.putFile("videos/big/source.mp4", join(work, "big.bin"));
      expect((await store.stat("videos/big/source.mp4"))?.size).toBe(big.length);
      const back = await store.read("videos/big/source.mp4", { start: 0, end: big.length - 1 });
      expect(Bun.hash(await bytesOf(back.stream))).toBe(Bun.hash(big));
      // Across the part boundaries.
      const across = await store.read("videos/big/source.mp4", { start: 5 * 1024 * 1024 - 3, end: 10 * 1024 * 1024 + 2 });
      expect(await bytesOf(across.stream)).toEqual(big.subarray(5 * 1024 * 1024 - 3, 10 * 1024 * 1024 + 3));
    },
    60_000,
  );

  each("a directory tree (an HLS ladder), listed, then its prefix deleted, twice", async (store) => {
    const ladder = join(work, `ladder-${store.kind}`);
    await mkdir(join(ladder, "360p"), { recursive: true });
    const files: Record<string, Uint8Array<ArrayBuffer>> = { "master.m3u8": pattern(120, 4), "360p/index.m3u8": pattern(300, 5) };
    for (let i = 0; i < 20; i++) files[`360p/seg${String(i).padStart(3, "0")}.m4s`] = pattern(1000 + i * 97, 6 + i);
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(ladder, name), bytes);

    const keys = await store.putDirectory("videos/h/hls/", ladder);
    expect(keys.sort()).toEqual(Object.keys(files).map((f) => `videos/h/hls/${f}`).sort());
    await store.putFile("videos/h/poster.jpg", join(work, "small.bin"));
    await store.putFile("videos/hx/poster.jpg", join(work, "small.bin")); // a neighbour sharing the "videos/h" text

    const listed = [];
    for await (const object of store.list("videos/h/")) listed.push(object);
    expect(listed.map((o) => o.key).sort()).toEqual([...keys, "videos/h/poster.jpg"].sort());
    const seg = listed.find((o) => o.key.endsWith("seg007.m4s"))!;
    expect(seg.size).toBe(files["360p/seg007.m4s"]!.length);
    const body = await store.read("videos/h/hls/360p/seg007.m4s", { start: 0, end: seg.size - 1 });
    expect(await bytesOf(body.stream)).toEqual(files["360p/seg007.m4s"]!);

    expect(await store.deletePrefix("videos/h/")).toBe(keys.length + 1);
    expect(await store.deletePrefix("videos/h/")).toBe(0); // already gone: still fine
    const after = [];
    for await (const object of store.list("videos/h/")) after.push(object);
    expect(after).toEqual([]);
    expect(await store.exists("videos/hx/poster.jpg")).toBe(true);
    expect(() => store.deletePrefix("videos/h")).toThrow(RangeError); // a prefix ends with "/"
  });

  each("delete of one object, and of one already gone", async (store) => {
    await store.putFile("videos/d/poster.jpg", join(work, "small.bin"));
    await store.delete("videos/d/poster.jpg");
    expect(await store.exists("videos/d/poster.jpg")).toBe(false);
    await store.delete("videos/d/poster.jpg");
  });
});

describe("S3Store", () => {
  const store = () => stores[0]![1] as S3Store;

  test("many objects list across pages", async () => {
    const paged = new S3Store({ ...s3.options, listPageSize: 10 });
    await writeFile(join(work, "tiny.bin"), "x");
    const keys = Array.from({ length: 25 }, (_, i) => `videos/many/thumbs/${String(i).padStart(4, "0")}.jpg`);
    for (const key of keys) await paged.putFile(key, join(work, "tiny.bin"));
    const listed: string[] = [];
    for await (const object of paged.list("videos/many/")) listed.push(object.key);
    expect(listed).toEqual(keys);
    expect(await paged.deletePrefix("videos/many/")).toBe(25);
  });

  test("a presigned URL GETs the exact bytes, ranges too, and carries Content-Disposition", async () => {
    await store().putFile("videos/p/source.mp4", join(work, "small.bin"), { type: "video/mp4" });
    const url = store().presign("videos/p/source.mp4", { expiresIn: 60 });
    expect(url).toContain("X-Amz-Expires=60");
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-type")).toBe("video/mp4");
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(SMALL);
    const part = await fetch(url, { headers: { range: "bytes=1000-1999" } });
    expect(part.status).toBe(206);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(SMALL.subarray(1000, 2000));
    const download = store().presign("videos/p/source.mp4", { expiresIn: 60, contentDisposition: 'attachment; filename="a.mp4"' });
    const saved = await fetch(download);
    expect(saved.headers.get("content-disposition")).toBe('attachment; filename="a.mp4"');
    await saved.arrayBuffer();
  });

  test("a read cancelled by its reader aborts the request", async () => {
    const big = pattern(3 * 1024 * 1024, 9);
    await writeFile(join(work, "cancel.bin"), big);
    await store().putFile("videos/c/source.mp4", join(work, "cancel.bin"));
    const controller = new AbortController();
    const body = await store().read("videos/c/source.mp4", { start: 0, end: big.length - 1 }, { signal: controller.signal });
    const reader = body.stream.getReader();
    const first = await reader.read();
    expect(first.value!.length).toBeGreaterThan(0);
    controller.abort(new Error("client went away"));
    let error: unknown;
    try {
      while (!(await reader.read()).done);
    } catch (e) {
      error = e;
    }
    expect(String(error)).toContain("client went away");
  });

  /** Each call against a store on `endpoint`'s port fails with StorageUnavailable, well within 2 s. */
  async function unavailableInTime(port: number, calls: (stuck: S3Store) => (() => Promise<unknown>)[]): Promise<void> {
    const stuck = new S3Store({ ...s3.options, endpoint: `http://127.0.0.1:${port}`, requestTimeoutMs: 300 });
    for (const call of calls(stuck)) {
      const started = performance.now();
      const error = await call().then(() => null, (e) => e);
      expect(error).toBeInstanceOf(StorageUnavailable);
      expect(performance.now() - started).toBeLessThan(2000);
    }
  }

  test("a bucket that never answers is StorageUnavailable within the deadline", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      await unavailableInTime(silent.port, (stuck) => [
        () => stuck.stat("videos/x/source.mp4"),
        () => stuck.read("videos/x/source.mp4", { start: 0, end: 9 }),
        () => stuck.delete("videos/x/source.mp4"),
        () => stuck.check(),
        () => stuck.putFile("videos/x/source.mp4", join(work, "small.bin")),
      ]);
    } finally {
      silent.stop(true);
    }
  });

  test("an error answer whose body stalls is StorageUnavailable within the deadline, not a hang", async () => {
    // A bucket (or proxy) that sends a 503's head and part of its body, then nothing.
    const stalling = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(socket) {
          socket.write("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: 1000\r\n\r\n<Error><Code>Slow");
        },
      },
    });
    try {
      await unavailableInTime(stalling.port, (stuck) => [() => stuck.read("videos/x/source.mp4", { start: 0, end: 9 }), () => stuck.stat("videos/x/source.mp4")]);
    } finally {
      stalling.stop(true);
    }
  });

  test("StorageUnavailable while s3rver is down, and everything works again once it is back", async () => {
    await store().putFile("videos/u/source.mp4", join(work, "small.bin"));
    await store().check();
    await s3.stop();
    try {
      for (const call of [
        () => store().check(),
        () => store().stat("videos/u/source.mp4"),
        () => store().read("videos/u/source.mp4", { start: 0, end: 99 }),
        () => store().putFile("videos/u/poster.jpg", join(work, "small.bin")),
        () => store().delete("videos/u/poster.jpg"),
        () => store().deletePrefix("videos/u/"),
      ]) {
        expect(await call().then(() => null, (e) => e)).toBeInstanceOf(StorageUnavailable);
      }
    } finally {
      await s3.start();
    }
    await store().check();
    const body = await store().read("videos/u/source.mp4", { start: 10, end: 19 });
    expect(await bytesOf(body.stream)).toEqual(SMALL.subarray(10, 20));
  }, 30_000);

  test("a bucket killed mid-read errors the stream, never ends it short", async () => {
    const big = pattern(40 * 1024 * 1024, 11);
    await writeFile(join(work, "midread.bin"), big);
    await store().putFile("videos/m/source.mp4", join(work, "midread.bin"));
    const body = await store().read("videos/m/source.mp4", { start: 0, end: big.length - 1 });
    const reader = body.stream.getReader();
    let received = (await reader.read()).value!.length;
    await s3.stop();
    let error: unknown;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
      }
    } catch (e) {
      error = e;
    } finally {
      await s3.start();
    }
    // Either the kill came after everything was sent (then every byte arrived) or it errors.
    if (received < big.length) expect(error).toBeInstanceOf(StorageUnavailable);
    else expect(error).toBeUndefined();
  }, 30_000);
});

describe("an HLS ladder's publish into the bucket (putLadder)", () => {
  const ladder = async (name: string, files: Record<string, string>) => {
    const dir = join(work, name);
    for (const [file, text] of Object.entries(files)) {
      await mkdir(join(dir, file, ".."), { recursive: true });
      await writeFile(join(dir, file), text);
    }
    return dir;
  };
  const keys = async (store: ObjectStore, prefix: string) => {
    const found: string[] = [];
    for await (const object of store.list(prefix)) found.push(object.key);
    return found.sort();
  };

  test("replaces the previous ladder and deletes what it no longer has, unless the job was taken away meanwhile", async () => {
    const store = stores.find(([k]) => k === "s3")![1];
    const prefix = "videos/ladder/hls/";
    await putLadder(store, prefix, await ladder("old", { "master.m3u8": "old", "360p/index.m3u8": "old", "720p/seg_1.m4s": "old" }), async () => true);
    // A worker paused past TRANSCODE_STALE_MS: another took its job over (and may have put a
    // ladder whose files this one would call stale). It puts its files, and deletes nothing.
    const paused = await ladder("paused", { "master.m3u8": "paused", "360p/index.m3u8": "paused" });
    await expect(putLadder(store, prefix, paused, async () => false)).rejects.toThrow("the job was taken away");
    expect(await keys(store, prefix)).toEqual([`${prefix}360p/index.m3u8`, `${prefix}720p/seg_1.m4s`, `${prefix}master.m3u8`]);
    // A database that does not answer: the same, without failing the publish.
    await putLadder(store, prefix, paused, () => Promise.reject(new Error("database unavailable")));
    expect(await keys(store, prefix)).toHaveLength(3);
    // Still its job: the previous ladder's extra file goes.
    await putLadder(store, prefix, paused, async () => true);
    expect(await keys(store, prefix)).toEqual([`${prefix}360p/index.m3u8`, `${prefix}master.m3u8`]);
    expect(await new Response((await store.read(`${prefix}master.m3u8`, { start: 0, end: 5 })).stream).text()).toBe("paused");
  });
});
