/**
 * How Spool starts ffmpeg and ffprobe, for ingest and transcoding alike: a minimal environment,
 * no stdin, a wall-clock limit, SIGKILL on cancel, and (on Linux) death with the parent process.
 *
 * `setpriv --pdeathsig KILL` makes a worker killed with SIGKILL (a crash, the OOM killer) take
 * its ffmpeg with it instead of leaving an orphan burning CPU: ffmpeg ignores SIGPIPE, so a
 * closed pipe alone does not stop it.
 */
import type { Subprocess } from "bun";

let setprivPath: string | null | undefined;

/** `setpriv --pdeathsig KILL` when it supports it (util-linux ≥ 2.33), else nothing: prefix a command with it to have the child die with this process. */
export function deathSignalWrapper(): string[] {
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

export interface LimitOptions {
  cwd: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Lower the CPU priority (nice 1-19) so background work yields to serving requests. */
  nice?: number;
}

let nicePath: string | null | undefined;

function niceWrapper(level: number | undefined): string[] {
  if (!level) return [];
  nicePath ??= Bun.which("nice");
  return nicePath ? [nicePath, "-n", String(level)] : [];
}

export interface LimitedProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Whether the time limit killed it. */
  timedOut(): boolean;
  /** Stops the timer and the abort listener, and kills the process if it is still running. */
  release(): void;
}

export function spawnLimited(command: string[], { cwd, timeoutMs, signal, nice }: LimitOptions): LimitedProcess {
  const proc = Bun.spawn([...deathSignalWrapper(), ...niceWrapper(nice), ...command], {
    cwd,
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
  }, timeoutMs);
  signal?.addEventListener("abort", kill, { once: true });
  return {
    proc,
    timedOut: () => timedOut,
    release() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", kill);
      // If reading its output failed, the caller is leaving early: never leave the tool running.
      if (proc.exitCode === null && proc.signalCode === null) kill();
    },
  };
}
