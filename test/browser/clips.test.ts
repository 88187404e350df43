/**
 * Clips and starting in the middle, in a real Chromium against a real Spool: a `?start=&end=`
 * clip in a plain <video> (its duration is the interval's, it plays, a seek lands and plays on);
 * the watch page's `?start=` with the original file and with hls.js; "copy link at" giving a
 * `?start=` link that keeps a signed video's token; the embed page inside an <iframe> on
 * another origin.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { AUTH, TEST_API_KEY, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { hlsSettled, makeSource, upload, waitForVideo, type VideoJson } from "../integration/hls-support.ts";
import { expectFrame, hasChromium, launch, seekAndPlay, videoState, waitForEvent, withPage } from "./support.ts";

const FPS = 25;
let browser: Browser;
let spool: TestSpool;
/** 20 s, 2 s GOPs, played as the original file (no ladder built for it: HLS skipped below). */
let direct: VideoJson;
/** The same kind of file with its HLS ladder built. */
let ladder: VideoJson;

beforeAll(async () => {
  if (!hasChromium) throw new Error("Chromium not found at /usr/bin/chromium (set CHROMIUM_PATH): the browser tests need it");
  browser = await launch();
  spool = await startTestSpool({ seedDemo: false });
  const source = await makeSource({ seconds: 20, bitrate: 600_000, fps: FPS });
  direct = await upload(spool.url, source, "direct.mp4", "Direct");
  ladder = await upload(spool.url, source, "ladder.mp4", "Ladder");
  direct = await waitForVideo(spool.url, direct.id, (v) => v.status === "ready", 60_000);
  ladder = await waitForVideo(spool.url, ladder.id, hlsSettled, 90_000);
  expect(ladder.hls.status).toBe("ready");
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await spool?.stop();
});

/** Current time after the video has played a little: resolves once it moved past `from`. */
function advancesPast(page: Page, from: number, timeoutMs = 15_000): Promise<number> {
  return page.evaluate(
    ({ from, timeout }) =>
      new Promise<number>((resolve, reject) => {
        const v = document.querySelector("video")!;
        const timer = setTimeout(() => reject(new Error(`still at ${v.currentTime} (wanted past ${from})`)), timeout);
        const check = () => {
          if (v.currentTime > from) {
            clearTimeout(timer);
            v.removeEventListener("timeupdate", check);
            resolve(v.currentTime);
          }
        };
        v.addEventListener("timeupdate", check);
        check();
      }),
    { from, timeout: timeoutMs },
  );
}

describe("a clip in a <video>", () => {
  test("?start=3.3&end=6.1: duration 2.8 s within a frame, plays, a seek lands and plays on", async () => {
    await withPage(browser, "clip-video", async (page) => {
      // A same-origin page without a CSP, so the frame check may read the pixels.
      await page.goto(`${spool.url}/health`);
      await page.evaluate((src) => {
        const v = document.createElement("video");
        v.muted = true;
        v.src = src;
        document.body.append(v);
        void v.play();
      }, `/api/stream/${direct.id}?start=3.3&end=6.1`);
      await waitForEvent(page, "playing");
      const state = await videoState(page);
      expect(state.error).toBeNull();
      expect(Math.abs(state.duration - 2.8)).toBeLessThanOrEqual(1 / FPS + 1e-3);
      await expectFrame(page, "the clip");
      expect(await advancesPast(page, 0.5)).toBeGreaterThan(0.5);
      const seek = await seekAndPlay(page, 0.6);
      expect(Math.abs(seek.landed - seek.target)).toBeLessThan(0.1);
      expect(seek.advancedTo).toBeGreaterThan(seek.landed);
      expect(seek.advancedTo).toBeLessThanOrEqual(2.8 + 1e-3);
    });
  }, 60_000);
});

describe("the watch page's ?start=", () => {
  test("the original file starts at 12.5 s (and can still be scrubbed back to 0)", async () => {
    await withPage(browser, "watch-start-direct", async (page) => {
      await page.goto(`${spool.url}/watch/${direct.id}?start=12.5&autoplay=1&engine=direct`);
      await waitForEvent(page, "playing");
      const state = await videoState(page);
      expect(state.engine).toBe("direct");
      // The whole video, not a clip: the full duration, from 12.5 on.
      expect(Math.abs(state.duration - 20)).toBeLessThan(0.1);
      expect(state.currentTime).toBeGreaterThanOrEqual(12.5);
      expect(state.currentTime).toBeLessThan(15);
      await expectFrame(page, "direct playback from 12.5 s");
      const back = await seekAndPlay(page, 0.05);
      expect(back.landed).toBeLessThan(2);
    });
  }, 60_000);

  test("hls.js starts at 12.5 s", async () => {
    await withPage(browser, "watch-start-hlsjs", async (page) => {
      await page.goto(`${spool.url}/watch/${ladder.id}?start=12.5&autoplay=1`);
      await waitForEvent(page, "playing", 30_000);
      const state = await videoState(page);
      expect(state.engine).toBe("hls.js");
      // hls.js starts on the segment holding 12.5 s (4 s segments): never before 12 s.
      expect(state.currentTime).toBeGreaterThanOrEqual(12);
      expect(state.currentTime).toBeLessThan(16);
      await expectFrame(page, "hls.js playback from 12.5 s");
    });
  }, 60_000);

  test("a start past the end or not a number is ignored or clamped, never an error", async () => {
    await withPage(browser, "watch-start-bad", async (page) => {
      await page.goto(`${spool.url}/watch/${direct.id}?start=abc&engine=direct`);
      await page.waitForFunction(() => document.querySelector("video")!.readyState >= 1);
      expect((await videoState(page)).currentTime).toBe(0);
      await page.goto(`${spool.url}/watch/${direct.id}?start=999&engine=direct`);
      await page.waitForFunction(() => document.querySelector("video")!.currentTime > 0);
      const state = await videoState(page);
      expect(state.error).toBeNull();
      expect(state.currentTime).toBeGreaterThan(19);
    });
  }, 60_000);
});

describe("copy link at the current time", () => {
  test("a signed video's link keeps its token and starts where the viewer was", async () => {
    const patched = await fetch(`${spool.url}/api/videos/${direct.id}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ playback: "signed" }) });
    expect(patched.status).toBe(200);
    try {
      const minted = (await (await fetch(`${spool.url}/api/videos/${direct.id}/tokens`, { method: "POST", headers: AUTH })).json()) as { token: string; watchUrl: string };
      await withPage(browser, "watch-share", async (page) => {
        await page.goto(`${spool.url}${minted.watchUrl}&engine=direct`);
        await page.waitForFunction(() => document.querySelector("video")!.readyState >= 1);
        await page.evaluate(() => {
          const v = document.querySelector("video")!;
          return new Promise((resolve) => {
            v.addEventListener("seeked", resolve, { once: true });
            v.currentTime = 7.36;
          });
        });
        expect(await page.textContent("#share-time")).toBe("0:07");
        await page.click("#share");
        const link = `${spool.url}/watch/${direct.id}?token=${minted.token}&start=7.3`;
        expect(await page.evaluate(() => (window as any).spoolShared)).toBe(link);
        expect(await page.inputValue("#share-link")).toBe(link);
        // The link plays from there for someone else (a fresh context: no session).
        await page.context().clearCookies();
        await page.goto(`${link}&autoplay=1&engine=direct`);
        await waitForEvent(page, "playing");
        expect((await videoState(page)).currentTime).toBeGreaterThanOrEqual(7.3);

        // The owner, signed in, plays with a token made for the page (6 h): it stays the page's.
        // The link carries none, as the library's "Copy link"; a token for others is minted on purpose.
        const signedIn = await fetch(`${spool.url}/api/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: TEST_API_KEY }) });
        expect(signedIn.status).toBe(204);
        const [name, value] = signedIn.headers.get("set-cookie")!.split(";")[0]!.split("=") as [string, string];
        await page.context().addCookies([{ name, value, url: spool.url }]);
        await page.goto(`${spool.url}/watch/${direct.id}?engine=direct`);
        await page.waitForFunction(() => document.querySelector("video")!.readyState >= 1);
        expect(await page.evaluate(() => new URL(document.querySelector("video")!.currentSrc).searchParams.has("token"))).toBe(true);
        expect(await page.evaluate(() => (window as any).spoolPlayer.shareUrl(2))).toBe(`${spool.url}/watch/${direct.id}?start=2`);
      });
    } finally {
      await fetch(`${spool.url}/api/videos/${direct.id}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ playback: "public" }) });
    }
  }, 60_000);
});

describe("the embed page", () => {
  test("plays inside an <iframe> on another origin, from ?start=", async () => {
    const host = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        new Response(`<!doctype html><title>Someone's blog</title><iframe id="f" src="${spool.url}/embed/${direct.id}?start=4&autoplay=1" width="640" height="360" allow="autoplay; fullscreen"></iframe>`, {
          headers: { "content-type": "text/html" },
        }),
    });
    try {
      await withPage(browser, "embed-iframe", async (page) => {
        await page.goto(`http://127.0.0.1:${host.port}/`);
        const frame = await (await page.waitForSelector("#f")).contentFrame();
        expect(frame).not.toBeNull();
        await frame!.waitForFunction(() => {
          const v = document.querySelector("video");
          return !!v && !v.paused && v.currentTime > 4.2;
        }, undefined, { timeout: 20_000 });
        expect(await frame!.evaluate(() => (window as any).spoolPlayer.start)).toBe(4);
        // Nothing but the player: no site header or details in the frame.
        expect(await frame!.evaluate(() => !!document.querySelector("header, .details"))).toBe(false);
      });
    } finally {
      host.stop(true);
    }
  }, 60_000);
});
