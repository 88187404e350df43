/**
 * Access control in a real browser (Debian's Chromium): the library page asks for the key,
 * signs in with a session cookie, uploads a signed video through the form and signs out; a
 * signed video plays through `/watch/:id?token=` with hls.js, every request carrying the token.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { AUTH, TEST_API_KEY, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { uploadMultipart, type VideoJson } from "../helpers/library.ts";
import { makeSource } from "../integration/hls-support.ts";
import { expectFrame, hasChromium, launch, recordNetwork, signIn, videoState, waitForEvent, withPage } from "./support.ts";

let browser: Browser;
let spool: TestSpool;
let source: string;

beforeAll(async () => {
  if (!hasChromium) throw new Error("Chromium not found at /usr/bin/chromium (set CHROMIUM_PATH): the browser tests need it");
  browser = await launch();
  spool = await startTestSpool({ seedDemo: false });
  source = await makeSource({ seconds: 8, bitrate: 800_000 });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await spool?.stop();
});

async function videoJson(id: string): Promise<VideoJson> {
  return (await (await fetch(`${spool.url}/api/videos/${id}`, { headers: AUTH })).json()) as VideoJson;
}

async function waitFor(id: string, done: (v: VideoJson) => boolean, timeoutMs = 60_000): Promise<VideoJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await videoJson(id);
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`video ${id} still ${v.status}/${v.hls.status}`);
    await Bun.sleep(100);
  }
}

test("the library page: a sign-in form, a wrong key refused, the key opens it, a signed upload through the form, sign out", async () => {
  await withPage(browser, "access-library", async (page, context) => {
    await page.goto(`${spool.url}/`);
    expect(await page.isVisible("#signin-form")).toBe(true);
    expect(await page.isVisible("#upload-form")).toBe(false);

    await page.fill("#signin-key", "not-the-key-at-all");
    await page.click("#signin-submit");
    await page.waitForFunction(() => (document.getElementById("signin-message")!.textContent ?? "").length > 0);
    expect(await page.textContent("#signin-message")).toContain("not valid");
    expect(await context.cookies()).toEqual([]);

    await page.fill("#signin-key", TEST_API_KEY);
    await Promise.all([page.waitForNavigation(), page.click("#signin-submit")]);
    expect(await page.isVisible("#upload-form")).toBe(true);
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: "spool_session", httpOnly: true, sameSite: "Strict", secure: false, path: "/" });

    // Upload a signed video through the form (XHR with the session cookie, same origin).
    await page.setInputFiles("#upload-file", source);
    await page.fill("#upload-title", "Signed from the page");
    await page.selectOption("#upload-playback", "signed");
    await page.click("#upload-submit");
    await page.waitForFunction(() => document.getElementById("upload-state")!.textContent === "ready", undefined, { timeout: 60_000 });
    const card = page.locator("#library li.card", { hasText: "Signed from the page" });
    await card.waitFor();
    const id = (await card.getAttribute("data-id"))!;
    const stored = await videoJson(id);
    expect(stored).toMatchObject({ title: "Signed from the page", playback: "signed", status: "ready" });

    // The owner's page shows the signed video's poster (the cookie stands for the key).
    const poster = await page.waitForFunction((cardId) => {
      const img = document.querySelector<HTMLImageElement>(`li[data-id="${cardId}"] img`);
      return img && img.complete && img.naturalWidth > 0 ? img.naturalWidth : null;
    }, id, { timeout: 30_000 });
    expect(await poster.jsonValue()).toBeGreaterThan(0);

    await Promise.all([page.waitForNavigation(), page.click("#sign-out")]);
    expect(await page.isVisible("#signin-form")).toBe(true);
    // Signed out on the server: the old cookie value no longer lists the library.
    const listed = await fetch(`${spool.url}/api/videos`, { headers: { cookie: `spool_session=${cookie!.value}` } });
    expect(listed.status).toBe(401);
  });
}, 120_000);

test("a signed video plays through /watch/:id?token= with hls.js; every request carries the token; without it the page refuses", async () => {
  const created = await uploadMultipart(spool.url, source, { name: "signed.mp4", title: "Signed HLS", playback: "signed" });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as VideoJson;
  await waitFor(id, (v) => v.status === "ready" && v.hls.status === "ready");
  const minted = (await (await fetch(`${spool.url}/api/videos/${id}/tokens`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: "{}" })).json()) as { token: string; watchUrl: string };

  await withPage(browser, "access-watch-signed", async (page) => {
    const refused = await page.goto(`${spool.url}/watch/${id}`);
    expect(refused!.status()).toBe(403);
    expect(await page.textContent("main")).toContain("private");

    const network = await recordNetwork(page, spool.url);
    await page.goto(`${spool.url}${minted.watchUrl}&autoplay=1`);
    await waitForEvent(page, "playing", 30_000);
    await expectFrame(page, "signed HLS playback");
    expect((await videoState(page)).engine).toBe("hls.js");

    const media = network.filter((e) => e.path.startsWith(`/api/hls/${id}/`) || e.path.startsWith(`/api/stream/${id}`) || e.path.startsWith(`/api/videos/${id}/`));
    const hls = media.filter((e) => e.path.startsWith(`/api/hls/${id}/`));
    console.log(`[browser] signed playback requests:\n  ${media.map((e) => `${e.path.split("?")[0]} → ${e.status}`).join("\n  ")}`);
    // The master, a variant playlist, its init segment and media segments, all with the token.
    expect(hls.some((e) => e.path.includes("/master.m3u8"))).toBe(true);
    expect(hls.some((e) => /\/\d+p\/index\.m3u8/.test(e.path))).toBe(true);
    expect(hls.some((e) => /\/init(_\d+)?\.mp4/.test(e.path))).toBe(true);
    expect(hls.some((e) => /\/seg_\d+\.m4s/.test(e.path))).toBe(true);
    for (const e of media) {
      expect(e.path).toContain(`token=${minted.token}`);
      if (e.status !== null) expect(e.status).not.toBe(403);
    }
  });
}, 120_000);

test("a page under /static runs its scripts sandboxed: not with the signed-in owner's session or storage", async () => {
  // What a hostile page (or an XSS in a trusted one) would try once the owner has signed in.
  await Bun.write(
    `${spool.staticDir}/probe.html`,
    `<!doctype html><title>probe</title><body><script>
    (async () => {
      const out = { origin: self.origin };
      try { out.list = (await fetch("/api/videos", { credentials: "include" })).status; } catch { out.list = "refused"; }
      try { out.mint = (await fetch("/api/videos/x/tokens", { method: "POST", credentials: "include", headers: { "content-type": "application/json" }, body: "{}" })).status; } catch { out.mint = "refused"; }
      try { localStorage.setItem("k", "v"); out.storage = "open"; } catch { out.storage = "blocked"; }
      document.body.dataset.out = JSON.stringify(out);
    })();
    </script>`,
  );
  await withPage(browser, "access-static-sandbox", async (page) => {
    await signIn(page, spool.url);
    const response = await page.goto(`${spool.url}/static/probe.html`);
    expect(response!.headers()["content-security-policy"]).toStartWith("sandbox allow-scripts ");
    const out = await page.waitForFunction(() => document.body.dataset.out ?? null, undefined, { timeout: 10_000 });
    // Its script ran, in an opaque origin: the API's answers are not its to read.
    expect(JSON.parse((await out.jsonValue()) as string)).toEqual({ origin: "null", list: "refused", mint: "refused", storage: "blocked" });
    // The owner's own page still works with the session.
    await page.goto(`${spool.url}/`);
    expect(await page.isVisible("#upload-form")).toBe(true);
  });
});
