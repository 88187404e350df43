/**
 * Runs the long transcode. Probing reuses the ingest module's hardened MediaTools; the transcode
 * needs what its `run` does not offer (ffmpeg's progress read as it streams, a working directory
 * of its own), so it reads the process here, started by the same `spawnLimited` under the same
 * rules: `-protocol_whitelist file`, the input pinned to the demuxer ffprobe identified, `file:`
 * URLs, `-nostdin`, a minimal environment, a wall-clock limit, SIGKILL on cancel.
 */
import { lastErrorLine } from "../../media/tools.ts";
import { spawnLimited } from "../../media/spawn.ts";
import { ProgressParser, type ProgressBlock } from "./progress.ts";

const MAX_STDERR = 64 * 1024;

export class TranscodeError extends Error {
  override name = "TranscodeError";
  constructor(
    message: string,
    readonly stderr = "",
    readonly reason: "failed" | "timeout" | "cancelled" = "failed",
  ) {
    super(message);
  }
}

export interface TranscodeRun {
  ffmpegPath: string;
  args: string[];
  cwd: string;
  timeoutMs: number;
  signal?: AbortSignal;
  onProgress?: (block: ProgressBlock) => void;
}

export async function runTranscode(run: TranscodeRun): Promise<void> {
  if (run.signal?.aborted) throw new TranscodeError("the transcode was cancelled", "", "cancelled");
  // Transcoding is background work: it must not slow the streams served from the same machine.
  const { proc, timedOut, release } = spawnLimited([run.ffmpegPath, ...run.args], { ...run, nice: 10 });

  const readProgress = async () => {
    const parser = new ProgressParser();
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout) {
      for (const block of parser.push(decoder.decode(chunk, { stream: true }))) run.onProgress?.(block);
    }
  };
  const readStderr = async () => {
    let text = "";
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) {
      // Keep the tail: the last lines say why ffmpeg gave up.
      text = (text + decoder.decode(chunk, { stream: true })).slice(-MAX_STDERR);
    }
    return text;
  };

  try {
    const [, stderr, code] = await Promise.all([readProgress(), readStderr(), proc.exited]);
    if (run.signal?.aborted) throw new TranscodeError("the transcode was cancelled", stderr, "cancelled");
    if (timedOut()) {
      const limit = run.timeoutMs < 10_000 ? (run.timeoutMs / 1000).toFixed(1) : String(Math.round(run.timeoutMs / 1000));
      throw new TranscodeError(`ffmpeg took longer than ${limit} s (TRANSCODE_TIMEOUT_MS) and was stopped`, stderr, "timeout");
    }
    if (code !== 0) throw new TranscodeError(lastErrorLine(stderr) || `ffmpeg exited with code ${code}`, stderr);
  } finally {
    release();
  }
}
