/**
 * Support for the HLS and browser tests: test media made with ffmpeg (cached per process) as
 * H.264/AAC MP4 (faststart) at a constant bit rate, so the ladder and byte offsets are
 * predictable (test/helpers/media.ts has no bit rate control, and the ladder depends on it),
 * and small HTTP helpers: upload, wait for a state, read Server-Sent Events.
 */
import { mkdirSync, rmSync, existsSync } from "node:fs";
import { rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AUTH } from "../helpers/spool.ts";

const DIR = join(tmpdir(), `spool-hls-media-${process.pid}`);
mkdirSync(DIR, { recursive: true });
process.on("exit", () => rmSync(DIR, { recursive: true, force: true }));

export interface SourceOptions {
  seconds: number;
  width?: number;
  height?: number;
  fps?: number;
  /** Video bits per second (CBR with filler, so the file really has it). */
  bitrate?: number;
  audio?: boolean;
}

const pending = new Map<string, Promise<string>>();

export async function ffmpeg(args: string[]): Promise<void> {
  const proc = Bun.spawn(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", ...args], { stdout: "ignore", stderr: "pipe" });
  const stderr = await new Response(proc.stderr).text();
  if ((await proc.exited) !== 0) throw new Error(`ffmpeg ${args.join(" ")} failed: ${stderr}`);
}

/** A moving test pattern (testsrc2, with a frame counter) and a tone. */
export function makeSource(options: SourceOptions): Promise<string> {
  const o = { width: 640, height: 360, fps: 30, bitrate: 1_200_000, audio: true, ...options };
  const name = `src-${o.seconds}s-${o.width}x${o.height}-${o.fps}-${o.bitrate}-${o.audio ? "a" : "n"}.mp4`;
  const out = join(DIR, name);
  let job = pending.get(out);
  if (!job) {
    job = (async () => {
      if (existsSync(out)) return out;
      const part = `${out}.part.mp4`;
      const kbps = Math.round(o.bitrate / 1000);
      await ffmpeg([
        "-f", "lavfi", "-i", `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}`,
        ...(o.audio ? ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"] : []),
        "-t", String(o.seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", String(o.fps * 2),
        "-b:v", `${kbps}k`, "-minrate", `${kbps}k`, "-maxrate", `${kbps}k`, "-bufsize", `${kbps}k`, "-x264-params", "nal-hrd=cbr",
        ...(o.audio ? ["-c:a", "aac", "-b:a", "96k"] : []),
        "-movflags", "+faststart",
        part,
      ]);
      await rename(part, out);
      return out;
    })();
    pending.set(out, job);
  }
  return job;
}

export interface VideoJson {
  id: string;
  title: string;
  sha256: string | null;
  status: string;
  error: string | null;
  duration: number | null;
  width: number | null;
  height: number | null;
  streamUrl: string;
  thumbnailUrl: string | null;
  hls: { status: string; progress: number; error: string | null; masterUrl: string | null; storyboardUrl: string | null };
}

/** Uploads a file through POST /api/videos (with the test key); resolves with the 201 body. */
export async function upload(baseUrl: string, path: string, name = "clip.mp4", title?: string): Promise<VideoJson> {
  const form = new FormData();
  if (title) form.append("title", title);
  form.append("file", Bun.file(path), name);
  const response = await fetch(`${baseUrl}/api/videos`, { method: "POST", body: form, headers: AUTH });
  if (response.status !== 201) throw new Error(`upload answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as VideoJson;
}

/** The video's JSON as its owner reads it (with the key: an HLS build's errors are the owner's). */
export async function getVideo(baseUrl: string, id: string): Promise<VideoJson> {
  return (await (await fetch(`${baseUrl}/api/videos/${id}`, { headers: AUTH })).json()) as VideoJson;
}

/** Polls the video until `done` holds; fails with the last state seen. */
export async function waitForVideo(baseUrl: string, id: string, done: (v: VideoJson) => boolean, timeoutMs = 45_000): Promise<VideoJson> {
  const deadline = Date.now() + timeoutMs;
  let last: VideoJson | undefined;
  while (Date.now() < deadline) {
    last = await getVideo(baseUrl, id);
    if (done(last)) return last;
    await Bun.sleep(100);
  }
  throw new Error(`video ${id} did not reach the expected state within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

export const hlsSettled = (v: VideoJson) => ["ready", "failed", "skipped"].includes(v.hls.status);

export interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/**
 * Reads a Server-Sent Events stream until `stop` returns true for an event (or the server
 * ends the stream), returning every event seen. The event streams are management routes: the
 * test key is sent unless `headers` says otherwise.
 */
export async function readEvents(url: string, stop: (e: SseEvent, all: SseEvent[]) => boolean, timeoutMs = 45_000, headers: Record<string, string> = AUTH): Promise<{ events: SseEvent[]; response: Response }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const response = await fetch(url, { signal: abort.signal, headers });
  const events: SseEvent[] = [];
  try {
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event: SseEvent = { event: "message", data: "" };
        let hasData = false;
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event.event = value;
          else if (field === "id") event.id = value;
          else if (field === "data") {
            event.data += (hasData ? "\n" : "") + value;
            hasData = true;
          }
        }
        if (!hasData) continue;
        events.push(event);
        if (stop(event, events)) {
          abort.abort();
          return { events, response };
        }
      }
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
    if (!events.length || !stop(events[events.length - 1]!, events)) throw new Error(`event stream timed out after ${timeoutMs} ms; events: ${JSON.stringify(events.map((e) => e.event))}`);
  } finally {
    clearTimeout(timer);
  }
  return { events, response };
}

/** Live HLS transcode ffmpeg processes whose command line mentions `needle` (from /proc). */
export async function processesMentioning(needle: string): Promise<number[]> {
  const { readdir, readFile } = await import("node:fs/promises");
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = (await readFile(`/proc/${entry}/cmdline`, "utf8")).replaceAll("\0", " ");
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      // Zombies (state Z) are dead already, just not reaped.
      // Only the transcode: ingest runs ffmpeg on the same files too (remux, posters).
      if (cmd.includes("ffmpeg") && cmd.includes("-hls_segment_type") && cmd.includes(needle) && !/\) Z /.test(stat)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
