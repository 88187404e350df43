/**
 * Playback in a real browser (Debian's Chromium via playwright-core) against a real Spool:
 * the original MP4 through byte ranges, and the HLS ladder through hls.js with a forced quality
 * switch and seeks. Screenshots land in test-results/browser/.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { hlsSettled, makeSource, upload, waitForVideo, type VideoJson } from "../integration/hls-support.ts";
import { codecSupport, expectFrame, hasChromium, launch, recordNetwork, seekAndPlay, videoState, waitForEvent, withPage } from "./support.ts";

let browser: Browser;
beforeAll(async () => {
  if (!hasChromium) throw new Error("Chromium not found at /usr/bin/chromium (set CHROMIUM_PATH): the browser tests need it");
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
});

test("Chromium decodes H.264/AAC, in <video> and through MSE (what the ladder and test media use)", async () => {
  await withPage(browser, "codecs", async (page) => {
    await page.setContent("<p>codec probe</p>");
    const support = await codecSupport(page);
    console.log(`[browser] ${await browser.version()} codec support: ${JSON.stringify(support)}`);
    if (!support["h264+aac (MSE, fMP4)"]!.mse) {
      throw new Error(`This Chromium cannot play H.264/AAC through MSE, so hls.js cannot play the ladder: ${JSON.stringify(support)}`);
    }
    expect(support["h264+aac (MSE, fMP4)"]).toEqual({ mse: true, element: "probably" });
    expect(support["h264 high (MSE)"]!.mse).toBe(true);
  });
}, 30_000);

describe("direct MP4 (the original file, byte ranges)", () => {
  let spool: TestSpool;
  let video: VideoJson;
  let size: number;

  beforeAll(async () => {
    // No worker: the ladder stays queued and the player must use the original file.
    spool = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"] });
    // 60 s at 2 Mb/s: ~15 MB, more than Chromium buffers ahead, so seeks need new ranges.
    const source = await makeSource({ seconds: 60, bitrate: 2_000_000 });
    const uploaded = await upload(spool.url, source, "direct.mp4");
    video = await waitForVideo(spool.url, uploaded.id, (v) => v.status === "ready");
    size = (video as VideoJson & { size: number }).size;
  }, 60_000);
  afterAll(() => spool?.stop());

  test("plays, seeks to 50 % and 90 % and keeps playing, over 206 ranges without downloading the file", async () => {
    await withPage(browser, "direct-mp4", async (page) => {
      const network = await recordNetwork(page, spool.url);
      await page.goto(`${spool.url}/watch/${video.id}?autoplay=1`);
      await waitForEvent(page, "playing");
      const first = await expectFrame(page, "direct MP4 playback");
      expect(first).toMatchObject({ width: 640, height: 360 });
      expect((await videoState(page)).engine).toBe("direct");

      const half = await seekAndPlay(page, 0.5);
      expect(Math.abs(half.landed - half.target)).toBeLessThan(1);
      await expectFrame(page, "after seeking to 50 %");
      const late = await seekAndPlay(page, 0.9);
      expect(Math.abs(late.landed - late.target)).toBeLessThan(1);
      await expectFrame(page, "after seeking to 90 %");
      const state = await videoState(page);
      expect(state.paused).toBe(false);
      expect(state.error).toBeNull();
      expect(state.currentTime).toBeGreaterThan(54);

      const media = network.filter((e) => e.path.startsWith(video.streamUrl));
      const summary = media.map((e) => `${e.range} → ${e.status} ${e.contentRange} (${e.received} B, ${e.outcome}${e.canceled ? ", canceled" : ""})`);
      console.log(`[browser] direct MP4 requests (${size} B file):\n  ${summary.join("\n  ")}`);
      // Every request for the file carried a Range, and every one answered got a 206; none was a
      // plain 200. (A seek can cancel a request before its answer arrives: it has no status.)
      for (const e of media) expect(e.range).toMatch(/^bytes=\d+-\d*$/);
      const answered = media.filter((e) => !(e.canceled && e.status === null));
      expect(answered.length).toBeGreaterThanOrEqual(2);
      for (const e of answered) {
        expect(e.status).toBe(206);
        expect(e.contentRange).toMatch(new RegExp(`^bytes \\d+-\\d+/${size}$`));
      }
      // The seeks were served from ranges starting deep inside the file...
      const starts = media.map((e) => Number(e.range!.slice(6, e.range!.indexOf("-"))));
      expect(Math.max(...starts)).toBeGreaterThan(size * 0.8);
      expect(starts.some((s) => s > size * 0.4 && s < size * 0.7)).toBe(true);
      // ...and the browser never fetched the whole file.
      const total = media.reduce((sum, e) => sum + e.received, 0);
      expect(total).toBeLessThan(size);
      expect(media.every((e) => e.received < size)).toBe(true);
      // Only the page, its assets and the stream were requested: no HLS.
      expect(network.filter((e) => e.path.startsWith("/api/hls/"))).toEqual([]);
    });
  }, 90_000);
});

describe("HLS through hls.js", () => {
  let spool: TestSpool;
  let video: VideoJson;

  beforeAll(async () => {
    spool = await startTestSpool({ seedDemo: false });
    // 20 s at 1.2 Mb/s: a 360p + 240p ladder, five 4 s segments.
    const source = await makeSource({ seconds: 20, bitrate: 1_200_000 });
    const uploaded = await upload(spool.url, source, "ladder.mp4", "Ladder");
    video = await waitForVideo(spool.url, uploaded.id, hlsSettled, 60_000);
    if (video.hls.status !== "ready") throw new Error(`the ladder was not built: ${JSON.stringify(video.hls)}`);
  }, 90_000);
  afterAll(() => spool?.stop());

  test("plays from the master playlist, switches quality on demand, seeks; only playlists and segments are fetched", async () => {
    await withPage(browser, "hls", async (page) => {
      const network = await recordNetwork(page, spool.url);
      await page.goto(`${spool.url}/watch/${video.id}?autoplay=1`);
      await waitForEvent(page, "playing");
      await expectFrame(page, "HLS playback");
      const state = await videoState(page);
      expect(state.engine).toBe("hls.js");
      expect(state.src).toStartWith("blob:"); // Media Source Extensions, fed by hls.js

      // The quality selector lists Auto and both renditions.
      const options = await page.$$eval("#quality option", (os) => os.map((o) => [(o as HTMLOptionElement).value, o.textContent]));
      expect(options.map((o) => o[1]!.replace(/ · \d+ kbps/, ""))).toEqual(["Auto", "360p", "240p"]);

      // Force each rendition in turn through the selector; the picture follows.
      for (const height of [240, 360]) {
        const index = await page.evaluate((h) => (window as any).spoolPlayer.hls.levels.findIndex((l: { height: number }) => l.height === h), height);
        await page.selectOption("#quality", String(index));
        await page.waitForFunction(
          ([i, h]) => {
            const p = (window as any).spoolPlayer;
            return p.hls.currentLevel === i && p.video.videoHeight === h && !p.video.paused;
          },
          [index, height] as const,
          { timeout: 15_000 },
        );
        const frame = await expectFrame(page, `HLS at ${height}p`);
        expect(frame.height).toBe(height);
        expect(await page.evaluate(() => (window as any).spoolPlayer.hls.autoLevelEnabled)).toBe(false);
      }
      expect(await page.textContent("#level")).toBe("360p");

      for (const fraction of [0.5, 0.9]) {
        const seek = await seekAndPlay(page, fraction);
        expect(Math.abs(seek.landed - seek.target)).toBeLessThan(1);
        await expectFrame(page, `HLS after seeking to ${fraction * 100} %`);
      }
      expect((await videoState(page)).error).toBeNull();

      // Scrubbing shows a storyboard tile for the hovered time.
      const box = (await page.locator("#scrub").boundingBox())!;
      // 27 % of 20 s: 5.4 s, inside the sixth one-second tile whatever the exact duration.
      await page.mouse.move(box.x + box.width * 0.27, box.y + box.height / 2);
      const preview = await page.evaluate(() => {
        const frame = document.getElementById("preview-frame")!;
        return { hidden: document.getElementById("preview")!.hidden, image: frame.style.backgroundImage, position: frame.style.backgroundPosition, time: document.getElementById("preview-time")!.textContent };
      });
      expect(preview.hidden).toBe(false);
      expect(preview.image).toContain(`/api/hls/${video.id}/storyboard_1.jpg`);
      expect(preview.time).toBe("0:05");
      expect(preview.position).toBe("-800px 0px");

      const api = network.filter((e) => e.path.startsWith("/api/"));
      const hlsBase = `/api/hls/${video.id}/`;
      const kinds = api.map((e) => {
        const rest = e.path.startsWith(hlsBase) ? e.path.slice(hlsBase.length) : null;
        if (rest === null) return `other ${e.path}`;
        if (/^(master|\d+p\/index)\.m3u8$/.test(rest)) return "playlist";
        if (/^\d+p\/(init(_\d+)?\.mp4|seg_\d+\.m4s)$/.test(rest)) return "segment";
        if (/^storyboard(\.vtt|_\d+\.jpg)$/.test(rest)) return "storyboard";
        return `other ${e.path}`;
      });
      console.log(`[browser] HLS requests: ${JSON.stringify(Object.fromEntries(["playlist", "segment", "storyboard"].map((k) => [k, kinds.filter((x) => x === k).length])))}`);
      // The poster is the only API request besides the ladder (and the scrubbing storyboard).
      const others = kinds.filter((k) => k.startsWith("other") && !k.includes(`/api/videos/${video.id}/thumbnail.jpg`));
      expect(others).toEqual([]);
      expect(api.some((e) => e.path.startsWith("/api/stream/"))).toBe(false);
      expect(kinds.filter((k) => k === "playlist").length).toBeGreaterThanOrEqual(3);
      // Both renditions' segments were fetched (the switch really happened).
      for (const r of ["240p", "360p"]) expect(api.some((e) => e.path.startsWith(`${hlsBase}${r}/seg_`))).toBe(true);
      // Every answer was a 200 (hls.js cancels in-flight loads when the level changes: those
      // may have no answer at all, which is fine).
      for (const e of api.filter((e) => e.path.startsWith(hlsBase))) {
        if (e.status === null) expect([e.path, e.outcome, e.canceled]).toEqual([e.path, "failed", true]);
        else expect([e.path, e.status]).toEqual([e.path, 200]);
      }
    });
  }, 90_000);

  test("native HLS, where the browser has it (this Chromium does), plays the same master playlist", async () => {
    await withPage(browser, "hls-native", async (page) => {
      await page.setContent("<p>probe</p>");
      const native = await page.evaluate(() => document.createElement("video").canPlayType("application/vnd.apple.mpegurl"));
      if (!native) {
        console.log("[browser] this Chromium has no native HLS: nothing to check");
        return;
      }
      const network = await recordNetwork(page, spool.url);
      await page.goto(`${spool.url}/watch/${video.id}?autoplay=1&engine=native`);
      await waitForEvent(page, "playing");
      await expectFrame(page, "native HLS playback");
      const state = await videoState(page);
      expect(state.engine).toBe("native");
      expect(state.src).toBe(`${spool.url}/api/hls/${video.id}/master.m3u8`);
      const seek = await seekAndPlay(page, 0.5);
      expect(Math.abs(seek.landed - seek.target)).toBeLessThan(1);
      await expectFrame(page, "native HLS after seeking to 50 %");
      expect(network.some((e) => e.path.startsWith("/api/stream/"))).toBe(false);
    });
  }, 60_000);
});
