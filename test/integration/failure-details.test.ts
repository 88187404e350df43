/**
 * Why an import failed is the owner's to read: its error names the host and the address it
 * resolved to. A viewer of a public video (its JSON, its watch page, its embed) is told only
 * that the import failed; the key or a session sees the details (found by a security audit).
 * Why an upload failed processing is everyone's (a direct upload's browser has no key). A real
 * server and database.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { VIEWER_IMPORT_FAILURE } from "../../src/schemas/video.ts";

let spool: TestSpool;
let id: string;
const DETAILS = "Import from intranet.example:8080 failed: intranet.example resolves to 10.0.0.5";

beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false });
  const row = await spool.ctx.library.begin({ originalFilename: "x.mp4", title: "An import that failed", playback: "public" }, "importing");
  id = row.id;
  await spool.ctx.library.markFailed(id, DETAILS);
});
afterAll(() => spool?.stop());

test("GET /api/videos/:id: a viewer reads that it failed, not why, in an answer no shared cache keeps; the key reads why", async () => {
  const viewer = await fetch(`${spool.url}/api/videos/${id}`);
  expect(viewer.status).toBe(200);
  expect(viewer.headers.get("cache-control")).toBe("private, no-cache");
  expect(((await viewer.json()) as { status: string; error: string }).error).toBe(VIEWER_IMPORT_FAILURE);
  const owner = await fetch(`${spool.url}/api/videos/${id}`, { headers: AUTH });
  expect(((await owner.json()) as { error: string }).error).toBe(DETAILS);
  // A wrong key is no owner either.
  const wrong = await fetch(`${spool.url}/api/videos/${id}`, { headers: { authorization: "Bearer wrong-key-wrong-key", "x-forwarded-for": "198.51.100.44" } });
  expect(((await wrong.json()) as { error: string }).error).toBe(VIEWER_IMPORT_FAILURE);
});

test("the watch and embed pages: a viewer's page says it failed, not why; the signed-in owner's watch page says why", async () => {
  for (const path of [`/watch/${id}`, `/embed/${id}`]) {
    const html = await (await fetch(spool.url + path)).text();
    expect({ path, details: html.includes("10.0.0.5") }).toEqual({ path, details: false });
  }
  const signIn = await fetch(`${spool.url}/api/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: AUTH.authorization.slice(7) }) });
  const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;
  expect(await (await fetch(`${spool.url}/watch/${id}`, { headers: { cookie } })).text()).toContain("10.0.0.5");
  expect(await (await fetch(`${spool.url}/embed/${id}`, { headers: { cookie } })).text()).not.toContain("10.0.0.5");
});

test("why an upload failed processing is said to everyone (a browser that uploaded through a direct upload URL has no key)", async () => {
  const row = await spool.ctx.library.begin({ originalFilename: "y.mp4", title: "Not a video", playback: "public" });
  await spool.ctx.library.markFailed(row.id, "Processing failed: no video frame could be decoded");
  const viewer = await fetch(`${spool.url}/api/videos/${row.id}`);
  expect(viewer.headers.get("cache-control")).toBe("no-cache");
  expect(((await viewer.json()) as { error: string }).error).toBe("Processing failed: no video frame could be decoded");
});
