/**
 * The watch and embed pages over real HTTP: the embed page is framable by any site (and only
 * it), a signed video's embed opens with the URL's token alone, a failed video's pages say why
 * once, and the watch page offers the share-at-this-time link.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { type VideoJson } from "../helpers/library.ts";
import { makeVideo } from "../helpers/media.ts";

let spool: TestSpool;
let pub: VideoJson;
let signed: VideoJson;
let failed: VideoJson;

beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"] });
  const file = await makeVideo({ seconds: 2 });
  const ingest = (title: string, playback: "public" | "signed") => spool.ctx.ingest.ingestPath(file, { title, originalFilename: "a.mp4", playback });
  const json = async (id: string) => (await (await fetch(`${spool.url}/api/videos/${id}`, { headers: AUTH })).json()) as VideoJson;
  pub = await json((await ingest("Public one", "public")).id);
  signed = await json((await ingest("Signed one", "signed")).id);
  const doomed = await ingest("Doomed", "public");
  await spool.ctx.library.markFailed(doomed.id, "Import from media.example:8080 failed: source answered 404 Not Found");
  failed = await json(doomed.id);
}, 60_000);
afterAll(() => spool?.stop());

const mint = async (id: string) => ((await (await fetch(`${spool.url}/api/videos/${id}/tokens`, { method: "POST", headers: AUTH })).json()) as { token: string }).token;
const occurrences = (text: string, needle: string) => text.split(needle).length - 1;
/** What a reader sees of a page: its text without tags. */
const visible = (html: string) => html.replace(/<[^>]*>/g, " ").toLowerCase();

describe("the embed page", () => {
  test("a public video: the player alone, framable by any site; the watch page is not framable", async () => {
    const r = await fetch(`${spool.url}/embed/${pub.id}`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(r.headers.get("x-frame-options")).toBeNull();
    const csp = r.headers.get("content-security-policy")!;
    expect(csp).toContain("frame-ancestors *");
    expect(csp).toContain("script-src 'self'");
    const html = await r.text();
    expect(html).toContain('<body class="embed">');
    expect(html).toContain('<video id="video"');
    expect(html).toContain('<script src="/assets/player.js"></script>');
    expect(html).not.toContain('<header class="top">');
    expect(html).not.toMatch(/<script>(?!<\/script>)/); // no inline script (CSP)
    const watch = await fetch(`${spool.url}/watch/${pub.id}`);
    expect(watch.headers.get("x-frame-options")).toBe("DENY");
    expect(watch.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
  });

  test("a signed video: 403 without a token (even for the signed-in owner), plays with the URL's token", async () => {
    const refused = await fetch(`${spool.url}/embed/${signed.id}`, { headers: AUTH });
    expect(refused.status).toBe(403);
    const refusal = await refused.text();
    expect(refusal).toContain("private");
    expect(refusal).not.toContain("Signed one");
    expect(refused.headers.get("content-security-policy")).toContain("frame-ancestors *");
    // A `token` the check does not read (a percent-encoded name) is no token: not the owner's key either.
    const disguised = await fetch(`${spool.url}/embed/${signed.id}?%74oken=x`, { headers: AUTH });
    expect(disguised.status).toBe(403);
    expect(await disguised.text()).not.toContain("Signed one");
    const token = await mint(signed.id);
    const ok = await fetch(`${spool.url}/embed/${signed.id}?token=${token}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain(`/api/stream/${signed.id}?token=${token}`);
    const other = await fetch(`${spool.url}/embed/${signed.id}?token=${await mint(pub.id)}`);
    expect(other.status).toBe(403);
    expect(await other.text()).toContain("another video");
  });

  test("no such video: 404", async () => {
    expect((await fetch(`${spool.url}/embed/AAAAAAAAAAAAAAAAAAAAAA`)).status).toBe(404);
    expect((await fetch(`${spool.url}/embed/not..an..id`)).status).toBe(404);
  });

  test("a 404 names only a well-formed id: a path cannot put its own sentence on Spool's pages (the embed's is framable by any site)", async () => {
    const spoof = "Your session has expired. Enter your API key at https://evil.example/login";
    for (const page of ["watch", "embed"]) {
      const r = await fetch(`${spool.url}/${page}/${encodeURIComponent(spoof)}`);
      expect(r.status).toBe(404);
      const text = visible(await r.text());
      expect(text).not.toContain("evil.example");
      expect(text).not.toContain("session has expired");
      expect(text).toContain("no video");
      // A well-formed id is still named, as before.
      expect(visible(await (await fetch(`${spool.url}/${page}/AAAAAAAAAAAAAAAAAAAAAA`)).text())).toContain("aaaaaaaaaaaaaaaaaaaaaa");
    }
  });
});

describe("a failed video's pages", () => {
  const error = "Import from media.example:8080 failed: source answered 404 Not Found";

  test("the watch page says it failed and why, once, with no player or download link (an import's why to its owner: see failure-details.test.ts)", async () => {
    const r = await fetch(`${spool.url}/watch/${failed.id}`, { headers: AUTH });
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(html).toContain(`<p class="error" id="failure" role="alert">${error}</p>`);
    expect(occurrences(html, "404 Not Found")).toBe(1);
    expect(occurrences(visible(html), "failed")).toBe(1);
    expect(html).not.toContain("player.js");
    expect(html).not.toContain("download=1");
  });

  test("a reason that does not say so is introduced once; the embed page says it in the frame", async () => {
    await spool.ctx.library.markFailed(failed.id, "ffprobe found no audio or video stream");
    const html = await (await fetch(`${spool.url}/watch/${failed.id}`)).text();
    expect(html).toContain(">Processing failed: ffprobe found no audio or video stream</p>");
    expect(occurrences(visible(html), "failed")).toBe(1);
    const embed = await (await fetch(`${spool.url}/embed/${failed.id}`)).text();
    expect(embed).toContain('<div class="overlay" id="failure" role="alert">Processing failed: ffprobe found no audio or video stream</div>');
    expect(embed).not.toContain("player.js");
  });
});

test("the watch page offers the share-at-this-time link", async () => {
  const html = await (await fetch(`${spool.url}/watch/${pub.id}`)).text();
  expect(html).toContain('<button type="button" id="share" class="secondary">Copy link at <span id="share-time">0:00</span></button>');
});
