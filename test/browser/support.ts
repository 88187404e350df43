/**
 * Real-browser test support: Debian's Chromium driven by playwright-core, a network recorder
 * on the DevTools protocol (what was requested, what the server answered, how many bytes really
 * arrived, even for media requests the browser cancelled), frame checks that fail with a clear
 * message, and screenshots saved as artifacts under test-results/browser/.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { TEST_API_KEY } from "../helpers/spool.ts";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const ARTIFACTS = resolve(import.meta.dir, "../../test-results/browser");
mkdirSync(ARTIFACTS, { recursive: true });

export const hasChromium = await Bun.file(CHROMIUM).exists();

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--autoplay-policy=no-user-gesture-required",
      "--mute-audio",
    ],
  });
}

export interface NetworkEntry {
  id: string;
  url: string;
  path: string;
  method: string;
  type: string;
  range: string | null;
  status: number | null;
  contentRange: string | null;
  /** Bytes of body the browser actually received. */
  received: number;
  outcome: "pending" | "finished" | "failed";
  canceled: boolean;
  fromCache: boolean;
}

/** Records every request of a page through the DevTools protocol. */
export async function recordNetwork(page: Page, origin: string): Promise<NetworkEntry[]> {
  const entries = new Map<string, NetworkEntry>();
  const list: NetworkEntry[] = [];
  const session = await page.context().newCDPSession(page);
  await session.send("Network.enable");
  session.on("Network.requestWillBeSent", (e) => {
    const headers = e.request.headers as Record<string, string>;
    const range = Object.entries(headers).find(([k]) => k.toLowerCase() === "range")?.[1] ?? null;
    const entry: NetworkEntry = {
      id: e.requestId,
      url: e.request.url,
      path: e.request.url.startsWith(origin) ? e.request.url.slice(origin.length) : e.request.url,
      method: e.request.method,
      type: e.type ?? "Other",
      range,
      status: null,
      contentRange: null,
      received: 0,
      outcome: "pending",
      canceled: false,
      fromCache: false,
    };
    // A redirect reuses the id: keep one entry per hop.
    entries.set(e.requestId, entry);
    list.push(entry);
  });
  session.on("Network.requestWillBeSentExtraInfo", (e) => {
    const entry = entries.get(e.requestId);
    const headers = e.headers as Record<string, string>;
    const range = Object.entries(headers).find(([k]) => k.toLowerCase() === "range")?.[1];
    if (entry && range) entry.range = range;
  });
  session.on("Network.responseReceived", (e) => {
    const entry = entries.get(e.requestId);
    if (!entry) return;
    entry.status = e.response.status;
    const headers = e.response.headers as Record<string, string>;
    entry.contentRange = Object.entries(headers).find(([k]) => k.toLowerCase() === "content-range")?.[1] ?? null;
    entry.fromCache = !!(e.response.fromDiskCache || e.response.fromPrefetchCache);
  });
  session.on("Network.dataReceived", (e) => {
    const entry = entries.get(e.requestId);
    if (entry) entry.received += e.dataLength;
  });
  session.on("Network.loadingFinished", (e) => {
    const entry = entries.get(e.requestId);
    if (entry) entry.outcome = "finished";
  });
  session.on("Network.loadingFailed", (e) => {
    const entry = entries.get(e.requestId);
    if (!entry) return;
    entry.outcome = "failed";
    entry.canceled = !!e.canceled;
  });
  return list;
}

/** Saves a screenshot artifact; never throws (a failing test must keep its own error). */
export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(ARTIFACTS, `${name}.png`);
  try {
    await page.screenshot({ path, fullPage: true });
  } catch (error) {
    console.warn(`[browser] screenshot ${name} failed: ${String(error)}`);
  }
  return path;
}

/**
 * Signs the page's browser context in as the library's owner, through the page's own sign-in
 * form (POST /api/session sets the session cookie, the page reloads into the library). The
 * library page needs it: its upload (XHR) and progress (EventSource) requests carry the cookie,
 * since neither can send an Authorization header.
 */
export async function signIn(page: Page, base: string, key: string = TEST_API_KEY): Promise<void> {
  await page.goto(`${base}/`);
  await page.fill("#signin-key", key);
  await page.click("#signin-submit");
  try {
    await page.waitForSelector("#upload-form", { timeout: 10_000 });
  } catch (error) {
    const message = await page.textContent("#signin-message").catch(() => null);
    throw new Error(`signing in failed${message ? `: ${message}` : ""} (${String(error)})`);
  }
}

/** Runs a test body with a fresh context; screenshots at the end, and on failure too. */
export async function withPage(browser: Browser, name: string, body: (page: Page, context: BrowserContext) => Promise<void>): Promise<void> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 820 } });
  const page = await context.newPage();
  const logs: string[] = [];
  page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
  try {
    await body(page, context);
    await screenshot(page, name);
  } catch (error) {
    const path = await screenshot(page, `${name}-FAILED`);
    const detail = logs.length ? `\nbrowser log:\n${logs.slice(-30).join("\n")}` : "";
    if (error instanceof Error) error.message += `\n(screenshot: ${path})${detail}`;
    throw error;
  } finally {
    await context.close();
  }
}

export interface VideoState {
  engine: string | null;
  currentTime: number;
  duration: number;
  paused: boolean;
  readyState: number;
  networkState: number;
  error: string | null;
  videoWidth: number;
  videoHeight: number;
  src: string;
}

export function videoState(page: Page): Promise<VideoState> {
  return page.evaluate(() => {
    const v = document.querySelector("video")!;
    return {
      engine: (window as unknown as { spoolPlayer?: { engine: string } }).spoolPlayer?.engine ?? null,
      currentTime: v.currentTime,
      duration: v.duration,
      paused: v.paused,
      readyState: v.readyState,
      networkState: v.networkState,
      error: v.error ? `${v.error.code}: ${v.error.message}` : null,
      videoWidth: v.videoWidth,
      videoHeight: v.videoHeight,
      src: v.currentSrc,
    };
  });
}

/**
 * Waits until the <video> presents a frame with a real picture in it (requestVideoFrameCallback,
 * then the frame drawn to a canvas must not be one flat colour). Fails with the element's state
 * when no frame renders in time: the usual cause is a codec the browser cannot decode.
 */
export async function expectFrame(page: Page, what: string, timeoutMs = 15_000): Promise<{ width: number; height: number; mediaTime: number }> {
  const result = await page.evaluate(
    (timeout) =>
      new Promise<{ ok: true; width: number; height: number; mediaTime: number } | { ok: false; reason: string }>((resolve) => {
        const v = document.querySelector("video")!;
        const timer = setTimeout(() => resolve({ ok: false, reason: "no frame was presented" }), timeout);
        v.requestVideoFrameCallback((_now, meta) => {
          clearTimeout(timer);
          const canvas = document.createElement("canvas");
          canvas.width = 64;
          canvas.height = 36;
          const g = canvas.getContext("2d")!;
          g.drawImage(v, 0, 0, 64, 36);
          const px = g.getImageData(0, 0, 64, 36).data;
          let min = 255;
          let max = 0;
          for (let i = 0; i < px.length; i += 4) {
            const luma = (px[i]! * 299 + px[i + 1]! * 587 + px[i + 2]! * 114) / 1000;
            min = Math.min(min, luma);
            max = Math.max(max, luma);
          }
          if (max - min < 10) resolve({ ok: false, reason: `the presented frame is blank (luma ${min.toFixed(0)}..${max.toFixed(0)})` });
          else resolve({ ok: true, width: meta.width, height: meta.height, mediaTime: meta.mediaTime });
        });
      }),
    timeoutMs,
  );
  if (!result.ok) {
    const state = await videoState(page);
    throw new Error(`${what}: ${result.reason} within ${timeoutMs / 1000} s. Video element: ${JSON.stringify(state)}`);
  }
  return result;
}

/** Resolves when the video fires `event` (already-past states count for "playing"). */
export async function waitForEvent(page: Page, event: string, timeoutMs = 15_000): Promise<void> {
  const ok = await page.evaluate(
    ({ event, timeout }) =>
      new Promise<boolean>((resolve) => {
        const v = document.querySelector("video")!;
        if (event === "playing" && !v.paused && v.readyState >= 3) return resolve(true);
        const timer = setTimeout(() => resolve(false), timeout);
        v.addEventListener(event, () => (clearTimeout(timer), resolve(true)), { once: true });
      }),
    { event, timeout: timeoutMs },
  );
  if (!ok) throw new Error(`the video never fired "${event}" within ${timeoutMs / 1000} s. Video element: ${JSON.stringify(await videoState(page))}`);
}

/** Seeks to `fraction` of the duration; resolves once seeked there and playback moved on from it. */
export async function seekAndPlay(page: Page, fraction: number, timeoutMs = 15_000): Promise<{ target: number; landed: number; advancedTo: number }> {
  const result = await page.evaluate(
    ({ fraction, timeout }) =>
      new Promise<{ target: number; landed: number; advancedTo: number } | { error: string }>((resolve) => {
        const v = document.querySelector("video")!;
        const target = v.duration * fraction;
        const timer = setTimeout(() => resolve({ error: `no progress after seeking to ${target.toFixed(2)} s (at ${v.currentTime.toFixed(2)} s, readyState ${v.readyState}, paused ${v.paused})` }), timeout);
        v.addEventListener(
          "seeked",
          () => {
            const landed = v.currentTime;
            const onTime = () => {
              if (v.currentTime > landed + 0.3) {
                v.removeEventListener("timeupdate", onTime);
                clearTimeout(timer);
                resolve({ target, landed, advancedTo: v.currentTime });
              }
            };
            v.addEventListener("timeupdate", onTime);
          },
          { once: true },
        );
        v.currentTime = target;
        if (v.paused) void v.play();
      }),
    { fraction, timeout: timeoutMs },
  );
  if ("error" in result) throw new Error(`seek to ${fraction * 100}%: ${result.error}`);
  return result;
}

/** The browser's codec support, for the report and for a clear failure. */
export function codecSupport(page: Page) {
  return page.evaluate(() => {
    const types = {
      "h264+aac (MSE, fMP4)": 'video/mp4; codecs="avc1.42E01E,mp4a.40.2"',
      "h264 high (MSE)": 'video/mp4; codecs="avc1.64001f"',
      "vp9+opus (MSE, WebM)": 'video/webm; codecs="vp9,opus"',
    };
    const v = document.createElement("video");
    const mse = (window as unknown as { MediaSource?: typeof MediaSource }).MediaSource;
    return Object.fromEntries(
      Object.entries(types).map(([name, type]) => [name, { mse: !!mse?.isTypeSupported(type), element: v.canPlayType(type) }]),
    ) as Record<string, { mse: boolean; element: string }>;
  });
}
