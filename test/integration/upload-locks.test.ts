/** Resumable uploads stay exclusive across processes sharing DATA_DIR (WORKERS > 1). */
import { expect, test } from "bun:test";
import { mkdtemp, readFile, writeFile, mkdir } from "node:fs/promises";
import { tmpdir, hostname } from "node:os";
import { join, resolve } from "node:path";
import { FileLocker } from "../../src/modules/uploads/file-locker.ts";

const CONTENDER = resolve(import.meta.dir, "../helpers/lock-contender.ts");

test("two processes never hold the same upload's lock at once", async () => {
  const root = await mkdtemp(join(tmpdir(), "spool-locks-"));
  const log = join(root, "log");
  await writeFile(log, "");
  const children = ["a", "b", "c"].map((name) =>
    Bun.spawn([process.execPath, CONTENDER, join(root, "locks"), log, name, "4"], { stdout: "inherit", stderr: "inherit" }),
  );
  expect(await Promise.all(children.map((c) => c.exited))).toEqual([0, 0, 0]);
  const lines = (await readFile(log, "utf8")).trim().split("\n");
  expect(lines.length).toBe(3 * 4 * 2);
  // Every hold is a "start X" immediately followed by its own "end X".
  for (let i = 0; i < lines.length; i += 2) {
    expect(lines[i]!.startsWith("start ")).toBe(true);
    expect(lines[i + 1]).toBe(lines[i]!.replace("start", "end"));
  }
});

test("a lock left by a process that died is broken; a live one is waited for", async () => {
  const dir = await mkdtemp(join(tmpdir(), "spool-locks-"));
  await mkdir(dir, { recursive: true });
  const dead = Bun.spawn(["true"]);
  await dead.exited;
  await writeFile(join(dir, "orphan.lock"), `${hostname()} ${dead.pid}`);
  const locker = new FileLocker(dir, { acquireTimeoutMs: 300, pollMs: 10, staleMs: 60_000 });
  const orphan = locker.newLock("orphan");
  await orphan.lock(new AbortController().signal, () => {});
  await orphan.unlock();

  await writeFile(join(dir, "held.lock"), `${hostname()} ${process.pid}`);
  const started = Date.now();
  await expect(locker.newLock("held").lock(new AbortController().signal, () => {})).rejects.toMatchObject({ status_code: 500 });
  expect(Date.now() - started).toBeGreaterThanOrEqual(250);
});
