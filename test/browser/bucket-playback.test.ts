/**
 * Playback from object storage (STORAGE=s3 on a real s3rver) in Debian's Chromium: the HLS
 * ladder, built by the worker and put into the bucket, plays through hls.js and seeks; the
 * original file plays and seeks over byte ranges served through the block cache. The cache is
 * kept at its smallest allowed size, smaller than the video, and must stay within it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { DEFAULT_BLOCK_SIZE } from "../../src/storage/blocks.ts";
import { startTestSpool, testBucketStorage, type TestSpool } from "../helpers/spool.ts";
import { hlsSettled, makeSource, upload, waitForVideo, type VideoJson } from "../integration/hls-support.ts";
import { expectFrame, hasChromium, launch, seekAndPlay, videoState, waitForEvent, withPage } from "./support.ts";

/** The smallest cache CACHE_MAX_BYTES allows: four blocks (8 MiB), less than the video. */
const CACHE_MAX = 4 * DEFAULT_BLOCK_SIZE;

let browser: Browser;
let spool: TestSpool;
let video: VideoJson;
let cacheDir: string;

/**
 * Bytes of the files in the cache directory, by inode: a walk is not atomic, and a temporary file
 * renamed into place between two listings would otherwise be counted twice.
 */
function cachedBytes(): number {
  const sizes = new Map<number, number>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        try {
          const info = statSync(path);
          sizes.set(info.ino, info.size);
        } catch {
          // renamed or evicted since the listing
        }
      }
    }
  };
  walk(cacheDir);
  let total = 0;
  for (const size of sizes.values()) total += size;
  return total;
}

beforeAll(async () => {
  if (!hasChromium) throw new Error("Chromium not found at /usr/bin/chromium (set CHROMIUM_PATH): the browser tests need it");
  browser = await launch();
  const dataDir = join(await mkdtemp(join(tmpdir(), "spool-bucket-play-")), "data");
  const storage = { ...(await testBucketStorage(dataDir)), cacheMaxBytes: CACHE_MAX };
  cacheDir = storage.cacheDir;
  spool = await startTestSpool({ dataDir, seedDemo: false, storage });
  // 40 s at 2 Mb/s: ~10 MB, more than the cache holds.
  const uploaded = await upload(spool.url, await makeSource({ seconds: 40, bitrate: 2_000_000 }), "bucket.mp4");
  video = await waitForVideo(spool.url, uploaded.id, hlsSettled, 120_000);
  if (video.hls.status !== "ready") throw new Error(`the ladder was not built: ${JSON.stringify(video.hls)}`);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await spool?.stop();
});

test("the HLS ladder plays from the bucket through hls.js, and seeks", async () => {
  await withPage(browser, "bucket-hls", async (page) => {
    await page.goto(`${spool.url}/watch/${video.id}?autoplay=1`);
    await waitForEvent(page, "playing", 30_000);
    expect((await videoState(page)).engine).toBe("hls.js");
    await expectFrame(page, "HLS from the bucket");
    const late = await seekAndPlay(page, 0.8, 30_000);
    expect(Math.abs(late.landed - late.target)).toBeLessThan(4);
    await expectFrame(page, "HLS from the bucket, after a seek");
    expect((await videoState(page)).error).toBeNull();
  });
}, 90_000);

test("the original file plays and seeks over ranges from the block cache, which stays within CACHE_MAX_BYTES", async () => {
  await withPage(browser, "bucket-direct", async (page) => {
    await page.goto(`${spool.url}/watch/${video.id}?autoplay=1&engine=direct`);
    await waitForEvent(page, "playing", 30_000);
    expect((await videoState(page)).engine).toBe("direct");
    await expectFrame(page, "original file from the bucket");
    for (const fraction of [0.5, 0.9, 0.2]) {
      const seek = await seekAndPlay(page, fraction, 30_000);
      expect(Math.abs(seek.landed - seek.target)).toBeLessThan(1);
      await expectFrame(page, `original file from the bucket, at ${fraction * 100} %`);
    }
    expect((await videoState(page)).error).toBeNull();
  });
  // The video is larger than the cache: blocks were evicted, and the bound held.
  expect((video as VideoJson & { size: number }).size).toBeGreaterThan(CACHE_MAX);
  expect(cachedBytes()).toBeGreaterThan(0);
  expect(cachedBytes()).toBeLessThanOrEqual(CACHE_MAX);
}, 90_000);
