/**
 * A tus Locker that also excludes other processes sharing DATA_DIR (WORKERS > 1, or several
 * servers on one volume), so two requests for one upload never write it at once.
 *
 * In-process contention keeps @tus/server's MemoryLocker semantics (the holder is asked to let
 * go). Across processes the holder cannot be asked, so a lock file is taken with O_EXCL and
 * polled for until it is free or the request gives up. A lock file left by a process that died
 * (same host, pid gone) or older than `staleMs` (another host) is broken.
 */
import { hostname } from "node:os";
import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { processAlive } from "../ingest/process.ts";
import { ERRORS, MemoryLocker, type Lock, type Locker, type RequestRelease } from "@tus/server";

const HOST = hostname();

export interface FileLockerOptions {
  /** How long a request waits for a lock before tus answers with an error. */
  acquireTimeoutMs?: number;
  pollMs?: number;
  /** A lock file this old is abandoned whoever wrote it (a request never holds one that long). */
  staleMs?: number;
}

export class FileLocker implements Locker {
  private readonly memory: MemoryLocker;
  private ready: Promise<unknown> | undefined;

  constructor(
    readonly directory: string,
    readonly options: Required<FileLockerOptions> = { acquireTimeoutMs: 30_000, pollMs: 25, staleMs: 10 * 60_000 },
  ) {
    this.memory = new MemoryLocker({ acquireLockTimeout: options.acquireTimeoutMs });
  }

  newLock(id: string): Lock {
    this.ready ??= mkdir(this.directory, { recursive: true });
    return new FileLock(this, this.memory.newLock(id), join(this.directory, `${id}.lock`), () => this.ready!);
  }
}

class FileLock implements Lock {
  constructor(
    private readonly locker: FileLocker,
    private readonly inProcess: Lock,
    private readonly path: string,
    private readonly ready: () => Promise<unknown>,
  ) {}

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    await this.inProcess.lock(signal, requestRelease);
    try {
      await this.ready();
      await this.acquireFile(signal);
    } catch (error) {
      await this.inProcess.unlock();
      throw error;
    }
  }

  async unlock(): Promise<void> {
    await rm(this.path, { force: true });
    await this.inProcess.unlock();
  }

  private async acquireFile(signal: AbortSignal): Promise<void> {
    const { acquireTimeoutMs, pollMs } = this.locker.options;
    const deadline = Date.now() + acquireTimeoutMs;
    for (;;) {
      try {
        const handle = await open(this.path, "wx");
        await handle.writeFile(`${HOST} ${process.pid}`);
        await handle.close();
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      if (await this.isStale()) {
        await rm(this.path, { force: true });
        continue;
      }
      if (signal.aborted || Date.now() > deadline) throw ERRORS.ERR_LOCK_TIMEOUT;
      await Bun.sleep(pollMs);
    }
  }

  private async isStale(): Promise<boolean> {
    try {
      const [owner, info] = await Promise.all([readFile(this.path, "utf8"), stat(this.path)]);
      const [host, pid] = owner.split(" ");
      if (host === HOST && pid && !processAlive(Number(pid))) return true;
      return Date.now() - info.mtimeMs > this.locker.options.staleMs;
    } catch {
      return false; // released between our attempt and this check: just try again
    }
  }
}
