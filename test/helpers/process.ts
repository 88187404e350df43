/** Spool as a real process (`bun src/index.ts`, or the bundle `npm start` runs), with its output captured. */
import { resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");

export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

export interface SpoolProcess {
  proc: ReturnType<typeof Bun.spawn>;
  output(): string;
  /** Resolves once every needle has appeared in stdout+stderr. */
  waitFor(needles: string[], ms?: number): Promise<void>;
}

export function spawnSpool(env: Record<string, string>, { entry = "src/index.ts" } = {}): SpoolProcess {
  return spawnCaptured([process.execPath, resolve(ROOT, entry)], env);
}

/** Any command run from the repository root (`npm start`, say), with Spool's test environment and its output captured. */
export function spawnCaptured(command: string[], env: Record<string, string>): SpoolProcess {
  let output = "";
  const proc = Bun.spawn(command, {
    cwd: ROOT,
    env: { ...process.env, LOG_FORMAT: "json", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  for (const stream of [proc.stdout, proc.stderr] as ReadableStream<Uint8Array>[]) {
    void (async () => {
      for await (const chunk of stream) output += new TextDecoder().decode(chunk);
    })();
  }
  return {
    proc,
    output: () => output,
    async waitFor(needles, ms = 20_000) {
      const deadline = Date.now() + ms;
      while (!needles.every((n) => output.includes(n))) {
        if (proc.exitCode !== null) throw new Error(`spool exited (${proc.exitCode}) before printing ${needles.join(", ")}; output:\n${output}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${needles.join(", ")}; output:\n${output}`);
        await Bun.sleep(50);
      }
    },
  };
}

/** Whether anything accepts TCP connections on the port. */
export async function listening(port: number): Promise<boolean> {
  try {
    const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}

/** The pids of a process's children. */
export async function childrenOf(pid: number): Promise<number[]> {
  const proc = Bun.spawn(["pgrep", "-P", String(pid)], { stdout: "pipe" });
  const text = await new Response(proc.stdout).text();
  await proc.exited;
  return text.split("\n").filter(Boolean).map(Number);
}
