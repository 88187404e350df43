/**
 * Clips of a file whose chunk offsets are 64-bit (`co64`), as large files and some cameras
 * write them: made here from an ffmpeg file (see toFaststartCo64), ingested unchanged, then cut
 * by Spool over real HTTP and judged by ffprobe and ffmpeg, as in clips.test.ts.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { decodeErrors, ffprobe, hasBox, lumaFrame, psnr, tempPath, toFaststartCo64 } from "../helpers/clips.ts";
import { makeVideo, sha256File } from "../helpers/media.ts";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";

const FPS = 25;
let spool: TestSpool;
let source: string;
let id: string;

beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"] });
  source = await toFaststartCo64(await makeVideo({ seconds: 8, fps: FPS, keyframeInterval: 2 * FPS, faststart: false }));
  expect(await hasBox(source, "co64")).toBe(true);
  expect(await hasBox(source, "stco")).toBe(false);
  // The converted file is itself valid: it decodes cleanly before Spool touches it.
  expect(await decodeErrors(source)).toBe("");
  id = (await spool.ctx.ingest.ingestPath(source, { title: "co64", originalFilename: "co64.mp4" })).id;
}, 60_000);
afterAll(() => spool?.stop());

test("the stored file keeps its co64 offsets (stored as uploaded: already faststart)", async () => {
  const row = (await spool.ctx.library.get(id))!;
  expect(row.status).toBe("ready");
  expect(row.sha256).toBe(await sha256File(source));
});

const cases: [number, number | undefined][] = [
  [3.3, 6.1],
  [0, 2],
  [5.52, undefined],
];
for (const [start, end] of cases) {
  test(`co64 ${start}-${end ?? "end"}: ffprobe's duration, a clean decode, the frame at start first`, async () => {
    const response = await fetch(`${spool.url}/api/stream/${id}?start=${start}${end === undefined ? "" : `&end=${end}`}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("video/mp4");
    const bytes = new Uint8Array(await response.arrayBuffer());
    const path = tempPath("mp4");
    await Bun.write(path, bytes);
    const probe = await ffprobe(path);
    expect(probe.streams.map((s) => s.codec_type).sort()).toEqual(["audio", "video"]);
    expect(Math.abs(probe.duration - ((end ?? 8) - start))).toBeLessThanOrEqual(1 / FPS + 1e-3);
    expect(await decodeErrors(path)).toBe("");
    const shownAtStart = Math.floor(start * FPS + 1e-6);
    expect(psnr(await lumaFrame(path, 0), await lumaFrame(source, shownAtStart))).toBeGreaterThanOrEqual(30);
  }, 30_000);
}
