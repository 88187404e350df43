/**
 * A real PostgreSQL for tests. `SPOOL_TEST_POSTGRES_URL` names a running server (scripts/test-all.sh
 * starts one for the whole run); without it, a throwaway cluster is made in a temporary directory
 * (Debian's postgresql package: initdb and pg_ctl as the `postgres` user when running as root,
 * since initdb refuses root) and stopped by `stop()`. Each caller gets databases of its own.
 */
import { SQL } from "bun";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./process.ts";

export interface TestPostgres {
  /** A URL of the server's `postgres` database (for administration). */
  adminUrl: string;
  /** Creates an empty database and returns its URL. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

const BIN = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"].find((dir) => existsSync(join(dir, "initdb")));

/** Whether a PostgreSQL is available to the tests (a given server, or binaries to start one). */
export function postgresAvailable(): boolean {
  return !!process.env.SPOOL_TEST_POSTGRES_URL || !!BIN;
}

async function run(command: string[]): Promise<void> {
  const asPostgres = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  const proc = Bun.spawn([...asPostgres, ...command], { stdout: "pipe", stderr: "pipe" });
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`${command.join(" ")} failed (${code}): ${err.trim()}`);
}

/** Starts a throwaway cluster (about 1.5 s), or reuses SPOOL_TEST_POSTGRES_URL's server. */
export async function startPostgres(): Promise<TestPostgres> {
  const given = process.env.SPOOL_TEST_POSTGRES_URL;
  let dir: string | undefined;
  let adminUrl = given;
  if (!adminUrl) {
    if (!BIN) throw new Error("PostgreSQL is not installed (apt-get install postgresql) and SPOOL_TEST_POSTGRES_URL is not set");
    dir = await mkdtemp(join(tmpdir(), "spool-pg-"));
    await chmod(dir, 0o777);
    const port = await freePort();
    await run([join(BIN, "initdb"), "-D", join(dir, "data"), "-U", "postgres", "-A", "trust", "--no-sync"]);
    await run([join(BIN, "pg_ctl"), "-D", join(dir, "data"), "-l", join(dir, "log"), "-w", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`, "start"]);
    adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }
  const admin = new SQL(adminUrl, { max: 1 });
  const made: string[] = [];
  return {
    adminUrl,
    async createDatabase() {
      const name = `spool_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
      await admin.unsafe(`CREATE DATABASE ${name}`);
      made.push(name);
      const url = new URL(adminUrl!);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async stop() {
      if (given) {
        // A shared server: drop this caller's databases (connections still open are ended).
        for (const name of made) await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      }
      await admin.close();
      if (dir) {
        await run([join(BIN!, "pg_ctl"), "-D", join(dir, "data"), "-m", "immediate", "-w", "stop"]).catch(() => {});
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
