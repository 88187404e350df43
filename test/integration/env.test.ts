/**
 * Start-up with settings Spool cannot use: one line `spool: ...` that names the setting, and no
 * side effects. Processes run `bun src/index.ts` in a temporary working directory (a DATABASE_URL
 * taken for a relative SQLite path would create files there); listen failures are checked on
 * startSpool itself, whose error carries the exit code.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadConfig } from "../../src/load-config.ts";
import { StartupError } from "../../src/lib/startup.ts";
import { startSpool } from "../../src/server.ts";
import { SQL } from "bun";
import { postgresAvailable, startPostgres } from "../helpers/postgres.ts";
import { freePort, ROOT } from "../helpers/process.ts";
import { startTestSpool, TEST_API_KEY } from "../helpers/spool.ts";

setDefaultTimeout(30_000);

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "spool-env-"));
  // Other users (the tests run as `nobody`) may enter it, not list it.
  await chmod(scratch, 0o711);
});
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** `bun src/index.ts` in a fresh directory of its own; killed (code null) if still running after `ms`. */
async function start(env: Record<string, string>, ms = 15_000): Promise<{ code: number | null; output: string; cwd: string }> {
  return run("src/index.ts", [], env, { ms });
}

/**
 * `bun <script> <args>` (the server, `bun run worker`, `bun run ingest`) in a fresh directory of
 * its own, as `user` if given (with runuser: the test runs as root); killed (code null) if still
 * running after `ms`. `cwd` and `env` may be functions of the fresh directory.
 */
async function run(
  script: string,
  args: string[],
  env: Record<string, string> | ((cwd: string) => Record<string, string> | Promise<Record<string, string>>),
  { ms = 15_000, user }: { ms?: number; user?: string } = {},
): Promise<{ code: number | null; output: string; cwd: string }> {
  const cwd = await mkdtemp(join(scratch, "run-"));
  if (user) await chmod(cwd, 0o777);
  const command = [process.execPath, resolve(ROOT, script), ...args];
  const proc = Bun.spawn(user ? ["runuser", "-u", user, "--", ...command] : command, {
    cwd,
    env: {
      ...process.env,
      LOG_FORMAT: "json",
      DATA_DIR: join(cwd, "data"),
      PORT: "0",
      SEED_DEMO: "0",
      TRANSCODE_IN_SERVER: "0",
      API_KEY: TEST_API_KEY,
      ...(typeof env === "function" ? await env(cwd) : env),
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  // runuser passes SIGTERM on to the command; a SIGKILL would leave the command running.
  let kill: ReturnType<typeof setTimeout> | undefined;
  const timer = setTimeout(() => {
    proc.kill(user ? "SIGTERM" : "SIGKILL");
    kill = setTimeout(() => proc.kill("SIGKILL"), 5000);
  }, ms);
  const [exit, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  clearTimeout(timer);
  clearTimeout(kill);
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

  test("STATIC_DIR=. beside the default ./data (it would serve /static/data/api-key): exit 2, nothing made", async () => {
    const { code, output, cwd } = await start({ STATIC_DIR: "." });
    expect(output).toBe(`spool: STATIC_DIR (${cwd}) and DATA_DIR (${join(cwd, "data")}) overlap: /static/ would serve Spool's own files (its API key, signing secret, database or videos); give STATIC_DIR a folder of its own`);
    expect(code).toBe(2);
    expect(await readdir(cwd)).toEqual([]);
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

  test.skipIf(!postgresAvailable())("PostgreSQL that refuses the tables (a role that may not create them): one line, exit 1, not a stack trace", async () => {
    const pg = await startPostgres();
    try {
      const url = new URL(await pg.createDatabase());
      const admin = new SQL(pg.adminUrl);
      // Roles belong to the whole cluster, which the suite's runs may share (SPOOL_TEST_POSTGRES_URL).
      const role = `spool_reader_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
      // PostgreSQL 15+: only the database owner may create in schema public.
      await admin.unsafe(`CREATE ROLE ${role} LOGIN`);
      url.username = role;
      const { code, output } = await start({ DATABASE_URL: url.toString() });
      await admin.unsafe(`DROP OWNED BY ${role}`).catch(() => {});
      await admin.unsafe(`DROP ROLE ${role}`).catch(() => {});
      await admin.close();
      expect(output.split("\n")).toHaveLength(1);
      expect(output).toStartWith(`spool: DATABASE_URL: cannot prepare the tables in PostgreSQL at ${url.hostname}:${url.port} (`);
      expect(output).toContain("permission denied");
      expect(code).toBe(1);
    } finally {
      await pg.stop();
    }
  });

  test("a HOST that is not this machine's: one line naming HOST, not 'port in use', exit 2", async () => {
    const { code, output } = await start({ HOST: "192.0.2.1", PORT: String(freePort()) });
    expect(output).toStartWith("spool: HOST=192.0.2.1: cannot listen there (EADDRNOTAVAIL");
    expect(output.split("\n")).toHaveLength(1);
    expect(code).toBe(2);
  });
});

describe("settings found unusable only at start: one line naming the setting, exit 2, no stack", () => {
  test.each([
    [":memory:", "is an in-memory database"],
    ["file:", "names no file"],
  ])("DATABASE_URL=%p (a different empty library in every process) is refused before anything is made", async (url, why) => {
    const { code, output, cwd } = await start({ DATABASE_URL: url, WORKERS: "2" });
    expect(output).toStartWith(`spool: DATABASE_URL must name a SQLite file (\`file:/path/spool.db\` or a path; unset: \`$DATA_DIR/spool.db\`), got ${JSON.stringify(url)}, which ${why}`);
    expect(output.split("\n")).toHaveLength(1);
    expect(code).toBe(2);
    expect(await readdir(cwd)).toEqual([]);
  });

  test("MEMORY_CACHE_BYTES above 1 TiB (its sketch alone ran out of memory at 2^50)", async () => {
    const { code, output } = await start({ MEMORY_CACHE_BYTES: "1125899906842624" });
    expect(output).toBe('spool: MEMORY_CACHE_BYTES must be an integer >= 0 and <= 1099511627776 (1 TiB), got "1125899906842624"');
    expect(code).toBe(2);
  });

  test("HOST with surrounding whitespace says so", async () => {
    const { code, output } = await start({ HOST: " 127.0.0.1" });
    expect(output).toBe('spool: HOST must not begin or end with whitespace (a space, tab or newline), got " 127.0.0.1"');
    expect(code).toBe(2);
  });

  /** The three commands that start from DATA_DIR and DATABASE_URL. */
  const COMMANDS: [string, string, string[]][] = [
    ["the server", "src/index.ts", []],
    ["bun run worker", "src/cli/worker.ts", []],
    ["bun run ingest", "src/cli/ingest.ts", [resolve(ROOT, "fixtures/demo.mp4")]],
  ];
  const NOT_A_DIRECTORY: [string, (cwd: string) => Promise<string>, string][] = [
    ["a regular file", async (cwd) => (await writeFile(join(cwd, "file"), "x"), join(cwd, "file")), "is not a directory (it is a file)"],
    ["/dev/null", async () => "/dev/null", "is not a directory (it is a device or other special file)"],
    ["under a file", async (cwd) => (await writeFile(join(cwd, "file"), "x"), join(cwd, "file", "data")), "cannot be created (a part of the path is a file)"],
  ];
  const cases = COMMANDS.flatMap(([name, script, args]) => NOT_A_DIRECTORY.map(([what, make, says]) => [name, what, script, args, make, says] as const));
  test.each(cases)("%s, DATA_DIR %s: no EEXIST stack, no 'chmod 700 it' warning", async (_name, _what, script, args, make, says) => {
    let dataDir = "";
    const { code, output } = await run(script, args, async (cwd) => ({ DATA_DIR: (dataDir = await make(cwd)) }));
    expect(output).toStartWith(`spool: DATA_DIR=${dataDir} ${says}`);
    expect(output.split("\n")).toHaveLength(1);
    expect(output).not.toContain("chmod");
    expect(code).toBe(2);
  });

  test.each([
    ["bun run worker", "src/cli/worker.ts", ["--bogus"], "usage: bun run worker"],
    ["bun run ingest", "src/cli/ingest.ts", ["x", "--bogus"], "usage: bun run ingest <file|http(s) URL>"],
  ])("%s with an unknown option: the option and the usage, exit 2", async (_name, script, args, usage) => {
    const { code, output } = await run(script, args, {});
    const [first, second, ...rest] = output.split("\n");
    expect(first).toBe("spool: unknown option --bogus");
    expect(second).toStartWith(usage);
    expect(rest).toEqual([]);
    expect(code).toBe(2);
  });

  test("bun run worker without ffmpeg: one line saying what it needs, exit 1", async () => {
    const { code, output } = await run("src/cli/worker.ts", [], { FFMPEG_PATH: "/nonexistent/ffmpeg" });
    expect({ code, output }).toEqual({ code: 1, output: "spool: a worker needs ffmpeg and ffprobe, which were not found (FFMPEG_PATH=/nonexistent/ffmpeg, FFPROBE_PATH=ffprobe): install ffmpeg, or set FFMPEG_PATH and FFPROBE_PATH" });
  });

  test("a kept secret too short to use: one line naming the file and the fix, not a stack", async () => {
    let path = "";
    const { code, output } = await run("src/index.ts", [], async (cwd) => {
      await mkdir(join(cwd, "data"), { mode: 0o700 });
      await writeFile((path = join(cwd, "data", "signing-secret")), "short\n", { mode: 0o600 });
      return {};
    });
    expect(output).toBe(`spool: SIGNING_SECRET: ${path} must hold at least 32 characters; delete it to have a new one generated`);
    expect(code).toBe(2);
  });

  // runuser needs root; `nobody` is then a user for whom DATA_DIR is someone else's.
  const asRoot = process.getuid?.() === 0 && Bun.which("runuser") !== null;

  test.skipIf(!asRoot).each(COMMANDS)("%s as another user, DATA_DIR not writable: no EACCES stack", async (_name, script, args) => {
    let dataDir = "";
    const { code, output } = await run(
      script,
      args,
      async (cwd) => {
        dataDir = join(cwd, "data");
        await mkdir(dataDir, { mode: 0o755 });
        return { DATA_DIR: dataDir };
      },
      { user: "nobody" },
    );
    expect(output).toBe(`spool: DATA_DIR=${dataDir} cannot be written (permission denied to this user (uid 65534)): make it a directory this user (uid 65534) can write, or set DATA_DIR elsewhere`);
    expect(code).toBe(2);
  });

  test.skipIf(!asRoot)("bun run ingest as another user, a file it may not read: one line naming it, exit 1, before DATA_DIR is touched", async () => {
    // Root's, mode 0600, in a directory `nobody` may enter.
    const source = join(scratch, "private.mp4");
    await copyFile(resolve(ROOT, "fixtures/demo.mp4"), source);
    await chmod(source, 0o600);
    let dataDir = "";
    const { code, output } = await run("src/cli/ingest.ts", [source], (cwd) => ({ DATA_DIR: (dataDir = join(cwd, "data")) }), { user: "nobody" });
    expect({ code, output }).toEqual({ code: 1, output: `ingest: cannot read ${source} (permission denied to this user (uid 65534))` });
    expect(existsSync(dataDir)).toBe(false);
  });

  test.skipIf(!asRoot)("as another user, a kept secret it may not read (another user's DATA_DIR/signing-secret): no EACCES stack", async () => {
    let path = "";
    const { code, output } = await run(
      "src/index.ts",
      [],
      async (cwd) => {
        const dataDir = join(cwd, "data");
        await mkdir(dataDir, { mode: 0o700 });
        await writeFile((path = join(dataDir, "signing-secret")), `${"s".repeat(40)}\n`, { mode: 0o600 });
        await chown(dataDir, 65534, 65534);
        return { DATA_DIR: dataDir };
      },
      { user: "nobody" },
    );
    expect(output).toBe(`spool: SIGNING_SECRET: cannot read or create ${path} (permission denied to uid 65534): give the user Spool runs as access to it, or set SIGNING_SECRET`);
    expect(code).toBe(2);
  });

  test.skipIf(!asRoot).each(COMMANDS.slice(0, 2))("%s as another user, a SQLite database it may only read: refused, not a /ready 200 and a 500 for every write", async (_name, script, args) => {
    let path = "";
    const { code, output } = await run(
      script,
      args,
      async (cwd) => {
        const dataDir = join(cwd, "data");
        await mkdir(dataDir, { mode: 0o700 });
        path = join(dataDir, "spool.db");
        // A database with the tables: made by a run that could write it.
        const { openDatabase } = await import("../../src/db/client.ts");
        await (await openDatabase(`file:${path}`)).close();
        await chown(dataDir, 65534, 65534);
        await chown(path, 65534, 65534);
        await chmod(path, 0o400);
        return { DATA_DIR: dataDir };
      },
      // Generous: a start from source takes seconds on a loaded machine (with 8 s this test failed once there).
      { user: "nobody", ms: 20_000 },
    );
    expect(output).toStartWith(`spool: DATABASE_URL: the SQLite database ${path} cannot be written (attempt to write a readonly database, SQLITE_READONLY)`);
    expect(output.split("\n")).toHaveLength(1);
    expect(code).toBe(2);
  });
});

describe("bun run worker logs as LOG_FORMAT says", () => {
  test("LOG_FORMAT=json: its start and its SIGTERM are JSON lines too, like everything else", async () => {
    const cwd = await mkdtemp(join(scratch, "worker-"));
    const proc = Bun.spawn([process.execPath, resolve(ROOT, "src/cli/worker.ts")], {
      cwd,
      env: { ...process.env, LOG_FORMAT: "json", DATA_DIR: join(cwd, "data"), API_KEY: TEST_API_KEY },
      stdout: "pipe",
      stderr: "pipe",
    });
    let output = "";
    const reading = Promise.all(
      [proc.stdout, proc.stderr].map(async (stream) => {
        for await (const chunk of stream as ReadableStream<Uint8Array>) output += new TextDecoder().decode(chunk);
      }),
    );
    const deadline = Date.now() + 15_000;
    while (!output.includes("started") && proc.exitCode === null && Date.now() < deadline) await Bun.sleep(50);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    await reading;
    const lines = output.trim().split("\n");
    const parsed = lines.map((line) => {
      try {
        return JSON.parse(line) as { msg?: string; component?: string };
      } catch {
        throw new Error(`not a JSON line: ${line}`);
      }
    });
    expect(parsed.some((line) => line.component === "worker" && line.msg?.includes("started"))).toBe(true);
    expect(parsed.some((line) => line.component === "worker" && line.msg === "SIGTERM: stopping")).toBe(true);
  });
});

describe("/ready's database check proves SQLite can be written", () => {
  test("a database that answers SELECT but refuses writes is not ready", async () => {
    const spool = await startTestSpool({ seedDemo: false, metrics: false });
    try {
      if (spool.ctx.db.dialect !== "sqlite") return;
      expect((await fetch(`${spool.url}/ready`)).status).toBe(200);
      // What a database file this user may only read does: reads answer, every write fails.
      spool.ctx.db.sqlite!.exec("PRAGMA query_only = 1");
      const response = await fetch(`${spool.url}/ready`);
      expect(response.status).toBe(503);
      expect(((await response.json()) as { checks: Record<string, string> }).checks.database).toBe("unavailable");
      spool.ctx.db.sqlite!.exec("PRAGMA query_only = 0");
      expect((await fetch(`${spool.url}/ready`)).status).toBe(200);
    } finally {
      await spool.stop();
    }
  });

  test("another process holding the write lock neither fails the check nor blocks the server for long", async () => {
    const spool = await startTestSpool({ seedDemo: false, metrics: false });
    try {
      if (spool.ctx.db.dialect !== "sqlite") return;
      const { Database } = await import("bun:sqlite");
      const other = new Database(join(spool.dataDir, "spool.db"));
      other.exec("BEGIN IMMEDIATE");
      try {
        const started = performance.now();
        await spool.ctx.db.ping();
        // The write check waits 100 ms for the lock, not the 5 s queries wait.
        expect(performance.now() - started).toBeLessThan(1000);
      } finally {
        other.exec("ROLLBACK");
        other.close();
      }
    } finally {
      await spool.stop();
    }
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
