/**
 * The only place Spool runs ffmpeg and ffprobe. Every run is hardened, because the input is
 * whatever a client uploaded:
 *
 *  - `-protocol_whitelist file`: no network protocol, no `concat:`/`subfile:`/`data:` tricks;
 *    paths are passed as `file:<absolute path>` so a name can never be read as a protocol.
 *  - `-format_whitelist` (ACCEPTED_DEMUXERS): a playlist (hls, dash), script (concat), image
 *    sequence or device is refused by the demuxer probe itself, before it can open anything.
 *    Once ffprobe identified the container, ffmpeg runs are pinned to it with `-f <demuxer>`.
 *  - Staged files carry no extension, so ffmpeg's probe cannot be steered by a file name.
 *  - Inputs and outputs must resolve inside DATA_DIR; outputs are size-capped with `-fs`.
 *  - A wall-clock limit per run (SIGKILL when exceeded), cancellation via AbortSignal,
 *    `-nostdin`, a minimal environment, the working directory set to DATA_DIR/tmp, and
 *    bounded capture of output.
 */
import { spawnLimited } from "./spawn.ts";
import { resolve, sep } from "node:path";
import type { Config } from "../config.ts";
import { HttpError } from "../http/errors.ts";
import { ebmlDocType, type Demuxer } from "./formats.ts";
import { hardenedInput } from "./input-args.ts";
import { NotMediaError, describeProbeFailure, parseProbe, type MediaInfo } from "./probe.ts";

export const DEFAULT_FFMPEG_TIMEOUT_MS = 30 * 60 * 1000;
/** Probes and single-frame extractions are quick; they get a tighter limit. */
const SHORT_RUN_MS = 60 * 1000;
const MAX_STDOUT = 16 * 1024 * 1024;
const MAX_STDERR = 64 * 1024;

export const ingestUnavailable = () =>
  new HttpError(
    503,
    "ingest_unavailable",
    "Ingest needs ffmpeg and ffprobe, which this server cannot find (install ffmpeg, or set FFMPEG_PATH and FFPROBE_PATH). Videos already in the library still stream.",
  );

export class ToolError extends Error {
  override name = "ToolError";
  constructor(
    message: string,
    readonly stderr = "",
    readonly timedOut = false,
  ) {
    super(message);
  }
}

export interface RunOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The last meaningful line of ffmpeg's stderr, for an error message a person can read. */
export function lastErrorLine(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/, "").trim())
    .filter((l) => l && !SAYS_NOTHING.test(l));
  return (lines[lines.length - 1] ?? "").slice(0, 300);
}

/** ffmpeg's lines that name no cause: a repeat count, and the summary after the error itself. */
const SAYS_NOTHING = /^(?:Last message repeated \d+ times?|Conversion failed!?)$/;

async function readCapped(stream: ReadableStream<Uint8Array>, limit: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    if (total >= limit) continue; // keep draining so the child never blocks on a full pipe
    const take = chunk.subarray(0, limit - total);
    chunks.push(take);
    total += take.byteLength;
  }
  return Buffer.concat(chunks).toString("utf8");
}

export class MediaTools {
  readonly tmpDir: string;

  constructor(
    readonly ffmpegPath: string,
    readonly ffprobePath: string,
    readonly dataDir: string,
    readonly timeoutMs = DEFAULT_FFMPEG_TIMEOUT_MS,
  ) {
    this.tmpDir = resolve(dataDir, "tmp");
  }

  /** Finds both binaries (PATH lookup or explicit paths); undefined when either is missing. */
  static locate(config: Pick<Config, "dataDir" | "ffmpegPath" | "ffprobePath" | "ffmpegTimeoutMs">): MediaTools | undefined {
    const ffmpeg = Bun.which(config.ffmpegPath ?? "ffmpeg");
    const ffprobe = Bun.which(config.ffprobePath ?? "ffprobe");
    if (!ffmpeg || !ffprobe) return undefined;
    return new MediaTools(ffmpeg, ffprobe, resolve(config.dataDir), config.ffmpegTimeoutMs ?? DEFAULT_FFMPEG_TIMEOUT_MS);
  }

  /** `file:<path>` for a path that must lie inside DATA_DIR. */
  private url(path: string): string {
    const absolute = resolve(path);
    if (!absolute.startsWith(this.dataDir + sep)) throw new Error(`refusing to let ffmpeg touch ${absolute}: outside DATA_DIR`);
    return `file:${absolute}`;
  }

  /** Input options every run on user bytes carries (see input-args.ts). */
  private input(path: string, demuxer?: Demuxer): string[] {
    return hardenedInput(this.url(path), demuxer);
  }

  /** Runs one of the two binaries with a time limit; resolves with stdout, rejects with ToolError. */
  async run(tool: "ffmpeg" | "ffprobe", args: string[], options: RunOptions = {}): Promise<string> {
    const binary = tool === "ffmpeg" ? this.ffmpegPath : this.ffprobePath;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    if (options.signal?.aborted) throw new ToolError(`${tool} was cancelled`);
    const { proc, timedOut, release } = spawnLimited([binary, ...args], { cwd: this.tmpDir, timeoutMs, signal: options.signal });
    try {
      const [stdout, stderr, code] = await Promise.all([
        readCapped(proc.stdout, MAX_STDOUT),
        readCapped(proc.stderr, MAX_STDERR),
        proc.exited,
      ]);
      if (timedOut()) {
        const limit = timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`;
        throw new ToolError(`${tool} took longer than ${limit} and was stopped`, stderr, true);
      }
      if (options.signal?.aborted) throw new ToolError(`${tool} was cancelled`, stderr);
      if (code !== 0) throw new ToolError(lastErrorLine(stderr) || `${tool} exited with code ${code}`, stderr);
      return stdout;
    } finally {
      release();
    }
  }

  /** Describes the file, or throws NotMediaError when it is not media Spool accepts. */
  async probe(path: string, options: RunOptions = {}): Promise<MediaInfo> {
    let stdout: string;
    try {
      stdout = await this.run(
        "ffprobe",
        ["-v", "error", "-hide_banner", ...this.input(path), "-show_format", "-show_streams", "-of", "json"],
        { timeoutMs: Math.min(this.timeoutMs, SHORT_RUN_MS), ...options },
      );
    } catch (error) {
      if (error instanceof ToolError && !error.timedOut && !options.signal?.aborted) {
        throw new NotMediaError(describeProbeFailure(error.stderr));
      }
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(stdout);
    } catch {
      throw new NotMediaError("ffprobe could not describe the file");
    }
    const file = Bun.file(path);
    const head = new Uint8Array(await file.slice(0, 4096).arrayBuffer());
    return parseProbe(json, { size: file.size, ebmlDocType: ebmlDocType(head) });
  }

  /** Stream-copies an ISO BMFF file with its `moov` box first. No re-encoding. */
  async remuxFaststart(input: string, output: string, demuxer: Demuxer, muxer: string, options: RunOptions = {}): Promise<void> {
    await this.remux(input, output, demuxer, muxer, ["-movflags", "+faststart"], options);
  }

  /**
   * A Matroska/WebM file written as it was recorded (a browser's MediaRecorder, OBS, ffmpeg to a
   * pipe) has no duration and no cues (its index) in its header: browsers cannot seek in it, and
   * nothing can tell how long it is. A stream copy into a file writes both.
   */
  async remuxIndexed(input: string, output: string, demuxer: Demuxer, muxer: string, options: RunOptions = {}): Promise<void> {
    await this.remux(input, output, demuxer, muxer, [], options);
  }

  /** A stream copy of every video, audio and subtitle stream into `muxer`, at most a little larger than the input. */
  private async remux(input: string, output: string, demuxer: Demuxer, muxer: string, muxerArgs: string[], options: RunOptions): Promise<void> {
    const limit = Math.ceil(Bun.file(input).size * 1.1) + 16 * 1024 * 1024;
    await this.run(
      "ffmpeg",
      [
        "-hide_banner", "-nostdin", "-v", "error",
        ...this.input(input, demuxer),
        "-map", "0:v?", "-map", "0:a?", "-map", "0:s?",
        "-c", "copy", "-dn", "-map_metadata", "0",
        ...muxerArgs,
        "-fs", String(limit),
        "-f", muxer, "-y", this.url(output),
      ],
      options,
    );
  }

  /**
   * Writes one JPEG frame at `seconds` (or the last frame, `seconds` = "end"), scaled to
   * `width` keeping the aspect ratio (even height). Rotation and pixel aspect are applied as
   * players apply them: an image viewer shows JPEG pixels square, so anamorphic frames are
   * stretched to their display width here (`dar`; ffmpeg's scale reads an unknown SAR as 1).
   */
  async extractFrame(input: string, output: string, demuxer: Demuxer, seconds: number | "end", width: number | null, options: RunOptions = {}): Promise<void> {
    const seek = seconds === "end" ? ["-sseof", "-1"] : ["-ss", seconds.toFixed(3)];
    await this.run(
      "ffmpeg",
      [
        "-hide_banner", "-nostdin", "-v", "error",
        ...seek,
        ...this.input(input, demuxer),
        "-map", "0:V:0",
        ...(seconds === "end" ? [] : ["-frames:v", "1"]),
        "-vf", width ? `scale=${width}:round(ow/dar/2)*2,setsar=1` : "scale=round(ih*dar):ih,setsar=1",
        "-q:v", "3",
        "-fs", String(32 * 1024 * 1024),
        "-f", "image2", "-c:v", "mjpeg", "-update", "1", "-y", this.url(output),
      ],
      { timeoutMs: Math.min(this.timeoutMs, SHORT_RUN_MS), ...options },
    );
  }

  /** Decodes the first seconds of the audio: proves an audio-only file is playable. */
  async decodeAudio(input: string, demuxer: Demuxer, seconds: number, options: RunOptions = {}): Promise<void> {
    await this.run(
      "ffmpeg",
      ["-hide_banner", "-nostdin", "-v", "error", "-xerror", ...this.input(input, demuxer), "-map", "0:a:0", "-t", String(seconds), "-f", "null", "-"],
      { timeoutMs: Math.min(this.timeoutMs, SHORT_RUN_MS), ...options },
    );
  }
}

export { NotMediaError };
