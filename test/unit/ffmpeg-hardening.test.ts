/**
 * How MediaTools runs ffmpeg/ffprobe: the hardening flags on every run, the environment and
 * working directory, paths confined to DATA_DIR, and the time limit that kills. Uses a stand-in
 * binary that records its arguments, environment and working directory.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MediaTools, ToolError } from "../../src/media/tools.ts";
import { FORMAT_WHITELIST } from "../../src/media/formats.ts";

let root: string;
let dataDir: string;
let recorder: string;
let sleeper: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "spool-ffmpeg-"));
  dataDir = join(root, "data");
  await mkdir(join(dataDir, "tmp"), { recursive: true });
  await mkdir(join(dataDir, "videos", "abcd"), { recursive: true });
  await writeFile(join(dataDir, "videos", "abcd", "incoming"), new Uint8Array(64));
  recorder = join(root, "recorder.sh");
  await writeFile(
    recorder,
    `#!/bin/sh\nprintf '%s\\n' "$@" > "${root}/args.txt"\nenv > "${root}/env.txt"\npwd > "${root}/pwd.txt"\necho '{}'\n`,
  );
  sleeper = join(root, "sleeper.sh");
  await writeFile(sleeper, "#!/bin/sh\nexec sleep 30\n");
  await chmod(recorder, 0o755);
  await chmod(sleeper, 0o755);
});
afterAll(() => rm(root, { recursive: true, force: true }));

const args = async () => (await readFile(join(root, "args.txt"), "utf8")).trimEnd().split("\n");
const input = () => join(dataDir, "videos", "abcd", "incoming");

/** `flag value` appears as consecutive arguments. */
function expectPair(list: string[], flag: string, value: string) {
  const at = list.findIndex((a, i) => a === flag && list[i + 1] === value);
  expect(at, `${flag} ${value} in ${list.join(" ")}`).toBeGreaterThanOrEqual(0);
  return at;
}

describe("every run on user bytes is hardened", () => {
  test("ffprobe: file protocol only, accepted demuxers only, an absolute file: URL", async () => {
    const tools = new MediaTools(recorder, recorder, dataDir);
    await tools.probe(input()).catch(() => {}); // "{}" is not media; the arguments are what matter
    const list = await args();
    const protocol = expectPair(list, "-protocol_whitelist", "file");
    const formats = expectPair(list, "-format_whitelist", FORMAT_WHITELIST);
    const source = expectPair(list, "-i", `file:${input()}`);
    expect(protocol).toBeLessThan(source);
    expect(formats).toBeLessThan(source);
  });

  test("ffmpeg remux: pinned to the probed demuxer, stream copy, faststart, output size capped", async () => {
    const tools = new MediaTools(recorder, recorder, dataDir);
    const output = join(dataDir, "videos", "abcd", "remux.part");
    await tools.remuxFaststart(input(), output, "mov", "mp4");
    const list = await args();
    expect(list.slice(0, 4)).toEqual(["-hide_banner", "-nostdin", "-v", "error"]);
    expectPair(list, "-protocol_whitelist", "file");
    expectPair(list, "-format_whitelist", "mov");
    const demuxer = expectPair(list, "-f", "mov");
    expect(demuxer).toBeLessThan(list.indexOf("-i"));
    expectPair(list, "-c", "copy");
    expectPair(list, "-movflags", "+faststart");
    expect(Number(list[list.indexOf("-fs") + 1])).toBeGreaterThan(64);
    expect(list.at(-1)).toBe(`file:${output}`);
  });

  test("ffmpeg frame: one frame of the first real video stream, JPEG, size capped", async () => {
    const tools = new MediaTools(recorder, recorder, dataDir);
    await tools.extractFrame(input(), join(dataDir, "videos", "abcd", "poster.jpg"), "matroska", 1.5, 320);
    const list = await args();
    expectPair(list, "-ss", "1.500");
    expectPair(list, "-f", "matroska");
    expectPair(list, "-map", "0:V:0");
    expectPair(list, "-frames:v", "1");
    // Scaled to the shown shape: anamorphic pixels are made square (an image viewer shows them so).
    expectPair(list, "-vf", "scale=320:round(ow/dar/2)*2,setsar=1");
    expectPair(list, "-c:v", "mjpeg");
    expect(list).toContain("-fs");
  });

  test("a minimal environment and DATA_DIR/tmp as working directory", async () => {
    process.env.SPOOL_TEST_SECRET = "must-not-leak";
    try {
      await new MediaTools(recorder, recorder, dataDir).probe(input()).catch(() => {});
    } finally {
      delete process.env.SPOOL_TEST_SECRET;
    }
    const env = await readFile(join(root, "env.txt"), "utf8");
    expect(env).not.toContain("SPOOL_TEST_SECRET");
    expect(env).toContain("LC_ALL=C");
    expect((await readFile(join(root, "pwd.txt"), "utf8")).trim()).toBe(join(dataDir, "tmp"));
  });

  test("inputs and outputs outside DATA_DIR are refused before anything runs", async () => {
    const tools = new MediaTools(recorder, recorder, dataDir);
    await expect(tools.probe("/etc/passwd")).rejects.toThrow("outside DATA_DIR");
    await expect(tools.remuxFaststart(input(), join(root, "escape.mp4"), "mov", "mp4")).rejects.toThrow("outside DATA_DIR");
    await expect(tools.extractFrame(input(), join(dataDir, "..", "escape.jpg"), "mov", 0, null)).rejects.toThrow("outside DATA_DIR");
  });
});

describe("time limits and cancellation kill the process", () => {
  test("a run past its limit is killed and reported as timed out", async () => {
    const tools = new MediaTools(sleeper, sleeper, dataDir, 300);
    const started = performance.now();
    const error = await tools.run("ffmpeg", []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolError);
    expect((error as ToolError).timedOut).toBe(true);
    expect((error as ToolError).message).toBe("ffmpeg took longer than 300 ms and was stopped");
    expect(performance.now() - started).toBeLessThan(3000);
  });

  test("an aborted run is killed", async () => {
    const tools = new MediaTools(sleeper, sleeper, dataDir);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = performance.now();
    await expect(tools.run("ffprobe", [], { signal: controller.signal })).rejects.toThrow("ffprobe was cancelled");
    expect(performance.now() - started).toBeLessThan(3000);
  });

  test("locate() finds nothing when a binary is missing", () => {
    expect(MediaTools.locate({ dataDir, ffmpegPath: "/nonexistent/ffmpeg", ffprobePath: recorder })).toBeUndefined();
    expect(MediaTools.locate({ dataDir, ffmpegPath: recorder, ffprobePath: recorder })).toBeInstanceOf(MediaTools);
  });
});
