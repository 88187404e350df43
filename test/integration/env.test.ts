/**
 * Start-up with settings Spool cannot use: one line `spool: ...` that names the setting, and no
 * side effects. Processes run `bun src/index.ts` in a temporary working directory (a DATABASE_URL
 * taken for a relative SQLite path would create files there); listen failures are checked on
 * startSpool itself, whose error carries the exit code.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { StartupError } from "../../src/lib/startup.ts";
import { startSpool } from "../../src/server.ts";
import { freePort, ROOT } from "../helpers/process.ts";
import { TEST_API_KEY } from "../helpers/spool.ts";

setDefaultTimeout(30_000);

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "spool-env-"));
});
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** `bun src/index.ts` in a fresh directory of its own; killed (code null) if still running after `ms`. */
async function start(env: Record<string, string>, ms = 15_000): Promise<{ code: number | null; output: string; cwd: string }> {
  const cwd = await mkdtemp(join(scratch, "run-"));
  const proc = Bun.spawn([process.execPath, resolve(ROOT, "src/index.ts")], {
    cwd,
    env: { ...process.env, LOG_FORMAT: "json", DATA_DIR: join(cwd, "data"), PORT: "0", SEED_DEMO: "0", TRANSCODE_IN_SERVER: "0", API_KEY: TEST_API_KEY, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), ms);
  const [exit, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  clearTimeout(timer);
  return { code: proc.signalCode ? null : exit, output: (out + err).trim(), cwd };
}

describe("a bad variable stops start-up with one line naming it", () => {
  test("a timer setting above 2^31-1 ms (Bun would run it after 1 ms): exit 2", async () => {
    const { code, output } = await start({ TRANSCODE_TIMEOUT_MS: "3000000000" });
    expect(output).toBe('spool: TRANSCODE_TIMEOUT_MS must be an integer >= 1000 and <= 2147483647 (about 24.8 days, the longest timer delay), got "3000000000"');
    expect(code).toBe(2);
  });

  test("TRANSCODE_STALE_MS not above TRANSCODE_HEARTBEAT_MS: exit 2", async () => {
    const { code, output } = await start({ TRANSCODE_HEARTBEAT_MS: "5000", TRANSCODE_STALE_MS: "4000" });
    expect(output).toBe("spool: TRANSCODE_STALE_MS (4000) must be greater than TRANSCODE_HEARTBEAT_MS (5000), or other workers take over jobs that are still running");
    expect(code).toBe(2);
  });

  test("a DATABASE_URL of another scheme is refused, not opened as ./mysql:/... with SQLite: exit 2", async () => {
    const { code, output, cwd } = await start({ DATABASE_URL: "mysql://spool:hunter2@db/spool" });
    expect(output).toBe('spool: DATABASE_URL must be `postgres://user:pass@host:5432/db` (PostgreSQL), or a `file:` URL or path (SQLite), got "mysql://spool:***@db/spool"');
    expect(code).toBe(2);
    // Refused before anything is made: no SQLite file, not even DATA_DIR.
    expect(await readdir(cwd)).toEqual([]);
  });

  test("a PostgreSQL URL without a host: exit 2", async () => {
    const { code, output } = await start({ DATABASE_URL: "postgres://" });
    expect(output).toBe('spool: DATABASE_URL must name the PostgreSQL server\'s host (`postgres://user:pass@host:5432/db`), got "postgres://"');
    expect(code).toBe(2);
  });

  test("PostgreSQL that cannot be reached: one line with where, no password, exit 1", async () => {
    const port = freePort();
    const { code, output } = await start({ DATABASE_URL: `postgres://spool:hunter2@127.0.0.1:${port}/spool` });
    expect(output.split("\n")).toHaveLength(1);
    expect(output).toStartWith(`spool: DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:${port} (`);
    expect(output).not.toContain("hunter2");
    expect(code).toBe(1);
  });

  test("a HOST that is not this machine's: one line naming HOST, not 'port in use', exit 2", async () => {
    const { code, output } = await start({ HOST: "192.0.2.1", PORT: String(freePort()) });
    expect(output).toStartWith("spool: HOST=192.0.2.1: cannot listen there (EADDRNOTAVAIL");
    expect(output.split("\n")).toHaveLength(1);
    expect(code).toBe(2);
  });
});

describe("startSpool's listen errors say which setting to fix", () => {
  const configFor = async (env: Record<string, string>) =>
    loadConfig({ DATA_DIR: await mkdtemp(join(scratch, "data-")), SEED_DEMO: "0", TRANSCODE_IN_SERVER: "0", API_KEY: TEST_API_KEY, WORKERS: "1", ...env });
  const failure = async (env: Record<string, string>): Promise<StartupError> => {
    const config = await configFor(env);
    const error = await startSpool(config).then(
      async (spool) => {
        await spool.stop();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StartupError);
    return error as StartupError;
  };

  test("an address that is not this machine's is HOST's fault: exit code 2", async () => {
    const error = await failure({ HOST: "192.0.2.1", PORT: String(freePort()) });
    expect(error.message).toStartWith("HOST=192.0.2.1: cannot listen there (EADDRNOTAVAIL");
    expect(error.message).not.toContain("in use");
    expect(error.exitCode).toBe(2);
  });

  test("a name that does not resolve is HOST's fault, with PORT=0 too, before DATA_DIR is touched", async () => {
    const config = await configFor({ HOST: "not-a-host.invalid", PORT: "0" });
    await rm(config.dataDir, { recursive: true });
    const error = await startSpool(config).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StartupError);
    expect((error as StartupError).message).toStartWith("HOST=not-a-host.invalid: cannot listen there (the name does not resolve");
    expect((error as StartupError).exitCode).toBe(2);
    expect(existsSync(config.dataDir)).toBe(false);
  });

  test("a port another program serves is still 'in use': exit code 1", async () => {
    const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("other") });
    try {
      const error = await failure({ HOST: "127.0.0.1", PORT: String(other.port) });
      expect(error.message).toBe(`port ${other.port} on 127.0.0.1 is already in use (another Spool, or another program): stop it or set PORT`);
      expect(error.exitCode).toBe(1);
    } finally {
      other.stop(true);
    }
  });
});
