/**
 * A throwaway S3-compatible server for tests: s3rver 3.7.1 (a devDependency) as a real process
 * on a free port, with the bucket `spool` and the keys S3RVER/S3RVER. No S3 mock anywhere: the
 * code under test speaks HTTP to it. One per test file:
 *
 *   const s3 = await startS3rver();
 *   afterAll(() => s3.dispose());
 *
 * s3rver does not check signatures, so it proves the requests and their bytes, not the auth.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, ROOT } from "./process.ts";
import { deathSignalWrapper } from "../../src/media/spawn.ts";

export const S3RVER_BUCKET = "spool";
export const S3RVER_KEY = "S3RVER";

export interface S3rver {
  port: number;
  endpoint: string;
  /** Where s3rver keeps the bucket's files. */
  dir: string;
  /** The standard S3_* variables for Spool and Bun.S3Client. */
  env: Record<string, string>;
  /** The S3Client options for the same server. */
  options: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string };
  /** Kills the server (SIGKILL) but keeps its files and port: the bucket is "down". */
  stop(): Promise<void>;
  /** Starts it again on the same port and files. */
  start(): Promise<void>;
  /** Stops it and removes its files. */
  dispose(): Promise<void>;
}

const S3RVER_BIN = resolve(ROOT, "node_modules/s3rver/bin/s3rver.js");

/**
 * node runs s3rver as its authors test it; Bun 1.4.5 runs it too, for machines without node.
 * s3rver 3.7.1 encrypts list continuation tokens with DES, which OpenSSL 3 (node >= 17) keeps
 * in its legacy provider: without the flag, listing past 1,000 keys answers 500.
 */
function runtime(): string[] {
  const node = Bun.which("node");
  return node ? [node, "--openssl-legacy-provider"] : [process.execPath];
}

async function answers(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/${S3RVER_BUCKET}?list-type=2&max-keys=1`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

export async function startS3rver(): Promise<S3rver> {
  const dir = await mkdtemp(join(tmpdir(), "spool-s3rver-"));
  const port = freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let proc: ReturnType<typeof Bun.spawn> | null = null;
  let output = "";

  async function start(): Promise<void> {
    // Already running (a test file's afterAll restarting the shared server "in case"): a second
    // process on the same port would exit at once, and `stop()` would then kill that one, not
    // the server that answers.
    if (proc !== null && proc.exitCode === null) return;
    output = "";
    const child = Bun.spawn(
      // Dies with the test process, however it ends (a crashed or killed `bun test` leaves no s3rver).
      [...deathSignalWrapper(), ...runtime(), S3RVER_BIN, "-d", dir, "-a", "127.0.0.1", "-p", String(port), "-s", "--configure-bucket", S3RVER_BUCKET],
      { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
    );
    proc = child;
    for (const stream of [child.stdout, child.stderr] as ReadableStream<Uint8Array>[]) {
      void (async () => {
        for await (const chunk of stream) output += new TextDecoder().decode(chunk);
      })();
    }
    const deadline = Date.now() + 15_000;
    while (!(await answers(endpoint))) {
      if (child.exitCode !== null) throw new Error(`s3rver exited (${child.exitCode}):\n${output}`);
      if (Date.now() > deadline) throw new Error(`s3rver did not answer on ${endpoint}:\n${output}`);
      await Bun.sleep(50);
    }
  }

  async function stop(): Promise<void> {
    const child = proc;
    proc = null;
    if (!child) return;
    child.kill("SIGKILL");
    await child.exited;
  }

  await start();
  const options = { endpoint, bucket: S3RVER_BUCKET, accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY, region: "us-east-1" };
  return {
    port,
    endpoint,
    dir,
    options,
    env: {
      S3_ENDPOINT: endpoint,
      S3_BUCKET: S3RVER_BUCKET,
      S3_REGION: "us-east-1",
      S3_ACCESS_KEY_ID: S3RVER_KEY,
      S3_SECRET_ACCESS_KEY: S3RVER_KEY,
    },
    stop,
    start,
    async dispose() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
