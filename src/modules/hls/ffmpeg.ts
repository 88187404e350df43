/**
 * Runs the long transcode. Probing reuses the ingest module's hardened MediaTools; the transcode
 * needs what its `run` does not offer (ffmpeg's progress read as it streams, a working directory
 * of its own, death with its parent), so it is spawned here under the same rules:
 * `-protocol_whitelist file`, the input pinned to the demuxer ffprobe identified, `file:` URLs,
 * `-nostdin`, a minimal environment, a wall-clock limit and SIGKILL on cancel.
 *
 * On Linux ffmpeg is started through `setpriv --pdeathsig KILL`, so a worker killed with
 * SIGKILL (a crash, the OOM killer) takes its ffmpeg with it instead of leaving an orphan
 * that keeps burning CPU (ffmpeg ignores SIGPIPE, so a closed progress pipe does not stop it).
 */
import { lastErrorLine } from "../ingest/ffmpeg.ts";
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

let setprivPath: string | null | undefined;

/** `setpriv` when it supports --pdeathsig (util-linux ≥ 2.33), else null. */
function deathSignalWrapper(): string[] {
  if (setprivPath === undefined) {
    setprivPath = null;
    if (process.platform === "linux") {
      const found = Bun.which("setpriv");
      if (found) {
        const probe = Bun.spawnSync([found, "--pdeathsig", "KILL", "true"], { stdout: "ignore", stderr: "ignore" });
        if (probe.exitCode === 0) setprivPath = found;
      }
    }
  }
  return setprivPath ? [setprivPath, "--pdeathsig", "KILL"] : [];
}

export async function runTranscode(run: TranscodeRun): Promise<void> {
  if (run.signal?.aborted) throw new TranscodeError("the transcode was cancelled", "", "cancelled");
  const proc = Bun.spawn([...deathSignalWrapper(), run.ffmpegPath, ...run.args], {
    cwd: run.cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let timedOut = false;
  const kill = () => {
    try {
      proc.kill("SIGKILL");
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, run.timeoutMs);
  run.signal?.addEventListener("abort", kill, { once: true });

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
    if (timedOut) {
      const limit = run.timeoutMs < 10_000 ? (run.timeoutMs / 1000).toFixed(1) : String(Math.round(run.timeoutMs / 1000));
      throw new TranscodeError(`ffmpeg took longer than ${limit} s (TRANSCODE_TIMEOUT_MS) and was stopped`, stderr, "timeout");
    }
    if (code !== 0) throw new TranscodeError(lastErrorLine(stderr) || `ffmpeg exited with code ${code}`, stderr);
  } finally {
    clearTimeout(timer);
    run.signal?.removeEventListener("abort", kill);
  }
}
