/**
 * The library page in a real browser: a tus upload interrupted by closing the page is offered
 * for resumption on the next visit and completes with the same bytes; an import from a URL;
 * rename and delete from a card; a video added by another client appears without a reload.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { makeLargeVideo, makeVideo, sha256File } from "../helpers/media.ts";
import { waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { hasChromium, launch, recordNetwork, signIn, withPage } from "./support.ts";

let browser: Browser;
let spool: TestSpool;
let source: ReturnType<typeof Bun.serve>;
let clip: string;

beforeAll(async () => {
  if (!hasChromium) throw new Error("Chromium not found at /usr/bin/chromium (set CHROMIUM_PATH): the browser tests need it");
  clip = await makeVideo({ seconds: 2 });
  source = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(Bun.file(clip), { headers: { "content-type": "video/mp4" } }) });
  browser = await launch();
  const saved = process.env.IMPORT_ALLOW_PRIVATE;
  process.env.IMPORT_ALLOW_PRIVATE = "1"; // the source is on 127.0.0.1
  spool = await startTestSpool({ seedDemo: false, imports: { allowPrivate: true } });
  if (saved === undefined) delete process.env.IMPORT_ALLOW_PRIVATE;
  else process.env.IMPORT_ALLOW_PRIVATE = saved;
});
afterAll(async () => {
  await browser?.close();
  await spool?.stop();
  source?.stop(true);
});

test("a tus upload cut off by closing the page resumes where it stopped", async () => {
  const file = await makeLargeVideo(6);
  const size = Bun.file(file).size;
  await withPage(browser, "library-tus-resume", async (page, context) => {
    await signIn(page, spool.url);
    // Slow the upload down so it can be cut part-way.
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1_500_000 });
    await page.setInputFiles("#upload-file", file);
    await page.fill("#upload-title", "Resumed upload");
    await page.click("#upload-submit");
    await page.waitForFunction(() => Number.parseInt(document.getElementById("upload-percent")!.textContent ?? "0") >= 15, undefined, { timeout: 30_000 });
    const cutAt = await page.textContent("#upload-percent");

    // The page goes away mid-upload (a closed tab, a crash): the next visit picks it up.
    await page.reload();
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const network = await recordNetwork(page, spool.url);
    await page.setInputFiles("#upload-file", file);
    await page.click("#upload-submit");
    await page.waitForSelector("#resume-offer:not([hidden])");
    expect(await page.textContent("#resume-text")).toContain("stopped part-way");
    await page.click("#resume-yes");
    await page.waitForFunction(() => ["ready", "n/a", "failed"].includes(document.getElementById("hls-percent")!.textContent ?? "") || /processing|ready/.test(document.getElementById("upload-state")!.textContent ?? ""), undefined, { timeout: 60_000 });

    // It resumed (HEAD for the offset, then PATCH) rather than creating a second upload.
    const tus = network.filter((e) => e.path.startsWith("/api/uploads"));
    expect(tus.map((e) => e.method)).toContain("HEAD");
    expect(tus.filter((e) => e.method === "POST")).toEqual([]);
    const id = decodeURIComponent(tus.find((e) => e.method === "HEAD")!.path.split("/").pop()!.split(".")[0]!);
    const video = await waitUntilSettled(spool.url, id, 60_000);
    console.log(`[browser] upload cut at ${cutAt}, resumed; ${size} bytes`);
    expect(video.status).toBe("ready");
    expect(video.title).toBe("Resumed upload");
    expect(video.sha256).toBe(await sha256File(file));
    // Only one video came of it.
    const list = (await (await fetch(`${spool.url}/api/videos`, { headers: AUTH })).json()) as { items: VideoJson[] };
    expect(list.items.filter((v) => v.title === "Resumed upload").length).toBe(1);
  });
}, 120_000);

test("import from a URL, rename and delete through the page; other clients' videos appear live", async () => {
  await withPage(browser, "library-import-rename-delete", async (page) => {
    page.on("dialog", (dialog) => void dialog.accept());
    await signIn(page, spool.url);
    await page.fill("#import-url", `http://127.0.0.1:${source.port}/clips/holiday.mp4`);
    await page.click("#import-submit");
    const found = page.locator("#library li.card", { hasText: "holiday" });
    await found.waitFor();
    const id = (await found.getAttribute("data-id"))!;
    const card = page.locator(`#library li[data-id="${id}"]`);
    const ready = await waitUntilSettled(spool.url, id);
    expect(ready.status).toBe("ready");
    expect(ready.sha256).toBe(await sha256File(clip));
    await page.waitForFunction((cardId) => !!document.querySelector(`li[data-id="${cardId}"] button[data-action="copy-link"]`), id);

    // Copy the watch link and the embed code.
    await card.locator('button[data-action="copy-link"]').click();
    expect(await page.evaluate(() => (window as any).spoolLastCopied)).toBe(`${spool.url}/watch/${id}`);
    await card.locator('button[data-action="copy-embed"]').click();
    expect(await page.evaluate(() => (window as any).spoolLastCopied)).toBe(`<video src="${spool.url}/api/stream/${id}" controls playsinline preload="metadata" poster="${spool.url}/api/videos/${id}/thumbnail.jpg"></video>`);
    await card.locator('button[data-action="copy-iframe"]').click();
    const iframe = (await page.evaluate(() => (window as any).spoolLastCopied)) as string;
    expect(iframe).toStartWith(`<iframe src="${spool.url}/embed/${id}" width="640" height="360" style="border:0" allow="autoplay; fullscreen; picture-in-picture" allowfullscreen title="`);
    expect((await fetch(iframe.match(/src="([^"]+)"/)![1]!)).headers.get("content-security-policy")).toContain("frame-ancestors *");

    // Rename inline.
    const long = `A very long title that goes on ${"and on ".repeat(20)}until the end`;
    await card.locator('button[data-action="rename"]').click();
    await card.locator("input.rename").fill(long);
    await card.locator("input.rename").press("Enter");
    await page.waitForFunction(([cardId, t]) => document.querySelector(`li[data-id="${cardId}"] .title`)?.textContent === t, [id, long] as const);
    expect(await card.locator(".title").getAttribute("title")).toBe(long);
    const renamed = (await (await fetch(`${spool.url}/api/videos/${id}`, { headers: AUTH })).json()) as VideoJson;
    expect(renamed.title).toBe(long);

    // A video added by another client (here the API) appears without a reload.
    const other = (await (
      await fetch(`${spool.url}/api/videos`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ url: `http://127.0.0.1:${source.port}/x.mp4`, title: "From another client" }) })
    ).json()) as VideoJson;
    await page.locator("#library li.card", { hasText: "From another client" }).waitFor({ timeout: 10_000 });

    // Delete (the confirmation is accepted).
    const cards = page.locator("#library li.card");
    const before = await cards.count();
    await card.locator('button[data-action="delete"]').click();
    await page.waitForFunction((cardId) => !document.querySelector(`li[data-id="${cardId}"]`), id);
    expect(await cards.count()).toBe(before - 1);
    expect((await fetch(`${spool.url}/api/videos/${id}`, { headers: AUTH })).status).toBe(404);
    await waitUntilSettled(spool.url, other.id);
  });
}, 120_000);

test("a failed import shows its error and can be deleted", async () => {
  await withPage(browser, "library-failed", async (page) => {
    page.on("dialog", (dialog) => void dialog.accept());
    await signIn(page, spool.url);
    await page.fill("#import-url", `http://127.0.0.1:1/nothing-listens-here.mp4`);
    await page.click("#import-submit");
    const card = page.locator("#library li.card.failed");
    await card.waitFor({ timeout: 15_000 });
    expect(await card.locator(".error").textContent()).toMatch(/^Import from 127\.0\.0\.1:1 failed: could not connect/);
    expect(await page.textContent("#upload-message")).toMatch(/could not connect/);
    // An import can be tried again (the source is still down: it fails again, once more on the card).
    const id = (await card.getAttribute("data-id"))!;
    const retried = page.waitForResponse((r) => r.url().endsWith(`/api/videos/${id}/retry`));
    await card.locator('button[data-action="retry-import"]').click();
    expect((await retried).status()).toBe(202);
    await page.waitForFunction((cardId) => !!document.querySelector(`li.card.failed[data-id="${cardId}"] button[data-action="retry-import"]`), id, { timeout: 15_000 });
    expect(await page.locator(`li[data-id="${id}"] .error`).count()).toBe(1);
    // After a reload the page still knows it was an import.
    await page.reload();
    await page.locator(`li.card.failed[data-id="${id}"] button[data-action="retry-import"]`).waitFor();
    await card.locator('button[data-action="delete"]').click();
    await card.waitFor({ state: "detached" });
  });
}, 60_000);
