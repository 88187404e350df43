/**
 * The library page in a real browser: a file uploaded through the form shows its upload and
 * transcoding progress (Server-Sent Events), appears in the library, and plays.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { makeSource } from "../integration/hls-support.ts";
import { expectFrame, hasChromium, launch, screenshot, signIn, videoState, waitForEvent, withPage } from "./support.ts";

let browser: Browser;
let spool: TestSpool;

beforeAll(async () => {
  if (!hasChromium) throw new Error("Chromium not found at /usr/bin/chromium (set CHROMIUM_PATH): the browser tests need it");
  browser = await launch();
  spool = await startTestSpool({ seedDemo: false });
});
afterAll(async () => {
  await browser?.close();
  await spool?.stop();
});

test("a file uploaded through the page shows its progress and becomes playable", async () => {
  // 20 s: long enough for the transcode to report progress several times.
  const source = await makeSource({ seconds: 20, bitrate: 1_200_000 });
  await withPage(browser, "upload", async (page) => {
    // The library is the owner's page: the browser signs in first (a session cookie).
    await signIn(page, spool.url);
    expect(await page.textContent("#library-empty")).toContain("No videos yet");

    // Record every value the progress texts take (the transcode moves fast on small files).
    await page.evaluate(() => {
      const seen: Record<string, string[]> = { upload: [], state: [], hls: [] };
      (window as any).progressSeen = seen;
      const watch = (id: string, key: string) => {
        const el = document.getElementById(id)!;
        new MutationObserver(() => {
          const text = el.textContent ?? "";
          if (seen[key]!.at(-1) !== text) seen[key]!.push(text);
        }).observe(el, { childList: true, characterData: true, subtree: true });
      };
      watch("upload-percent", "upload");
      watch("upload-state", "state");
      watch("hls-percent", "hls");
    });

    await page.setInputFiles("#upload-file", source);
    expect(await page.textContent("#upload-file-name")).toBe(source.slice(source.lastIndexOf("/") + 1));
    await page.fill("#upload-title", "Uploaded in the browser");
    await page.click("#upload-submit");

    // Mid-way through the transcode: a screenshot of the progress display.
    await page.waitForFunction(() => /^\d+%$/.test(document.getElementById("hls-percent")!.textContent ?? ""), undefined, { timeout: 60_000 });
    await screenshot(page, "upload-progress");
    await page.waitForFunction(() => document.getElementById("hls-percent")!.textContent === "ready", undefined, { timeout: 60_000 });

    const seen = (await page.evaluate(() => (window as any).progressSeen)) as Record<string, string[]>;
    console.log(`[browser] progress shown: ${JSON.stringify(seen)}`);
    expect(seen.upload!.at(-1)).toBe("100%");
    expect(seen.state).toContain("ready");
    const percents = seen.hls!.filter((t) => /^\d+%$/.test(t)).map((t) => Number.parseInt(t));
    expect(percents.length).toBeGreaterThan(0);
    expect(percents.some((p) => p > 0 && p < 100)).toBe(true);
    expect([...percents].sort((a, b) => a - b)).toEqual(percents);
    expect(seen.hls!.at(-1)).toBe("ready");
    expect(await page.textContent("#upload-message")).toContain("Ready");
    expect(await page.evaluate(() => (document.getElementById("hls-progress") as HTMLProgressElement).value)).toBe(100);

    // The new video is in the library with its HLS badge.
    const card = page.locator("#library li.card").first();
    expect(await card.locator(".title").textContent()).toBe("Uploaded in the browser");
    expect(await card.locator("[data-badge]").textContent()).toBe("HLS");

    await page.click("#upload-watch");
    await page.waitForURL(/\/watch\/[A-Za-z0-9_-]+$/);
    await page.click("#play");
    await waitForEvent(page, "playing");
    await expectFrame(page, "playback of the uploaded video");
    expect((await videoState(page)).engine).toBe("hls.js");
    expect(await page.textContent("h1")).toBe("Uploaded in the browser");
  });
}, 120_000);
