/**
 * A tus Locker that also excludes other processes sharing DATA_DIR (WORKERS > 1, or several
 * servers on one volume), so two requests for one upload never write it at once.
 *
 * In-process contention keeps @tus/server's MemoryLocker semantics: the holder is asked to let
 * go through its release callback. Across processes the holder cannot be asked, so the request
 * polls for the upload's lock until it is free or the request gives up.
 *
 * The cross-process lock is proper-lockfile's: a directory made with mkdir (atomic, also on
 * network filesystems) whose mtime the holder refreshes every `updateMs` for as long as it holds
 * it. A lock whose mtime is older than `staleMs` belongs to a holder that died (kill -9, a lost
 * host) and is broken by the next contender; a live holder is never judged stale however long
 * its upload takes. If the holder finds its lock was taken from it (its event loop stalled past
 * `staleMs`, or two contenders broke the same stale lock at once), proper-lockfile says so and
 * the holder is asked to let go, as for in-process contention, instead of writing on.
 */
import { logger } from "../../lib/log.ts";
import { mkdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { lock as lockPath } from "proper-lockfile";
import { videoIdOfUpload } from "./upload-ids.ts";
import { ERRORS, MemoryLocker, type Lock, type Locker, type RequestRelease } from "@tus/server";

export interface FileLockerOptions {
  /** How long a request waits for a lock (in-process and cross-process together) before tus answers with an error. */
  acquireTimeoutMs?: number;
  /** How often a request waiting for another process's lock tries again. */
  pollMs?: number;
  /** A lock not refreshed for this long is abandoned (its holder died); at least 2000 (proper-lockfile's floor). */
  staleMs?: number;
  /** How often a holder refreshes its lock; at most staleMs / 2, at least 1000. Default staleMs / 2. */
  updateMs?: number;
}

const DEFAULTS = { acquireTimeoutMs: 30_000, pollMs: 25, staleMs: 10_000 };

export class FileLocker implements Locker {
  readonly options: Required<Omit<FileLockerOptions, "updateMs">> & Pick<FileLockerOptions, "updateMs">;
  private readonly memory: MemoryLocker;
  private ready: Promise<unknown> | undefined;

  constructor(
    readonly directory: string,
    options: FileLockerOptions = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
    this.memory = new MemoryLocker({ acquireLockTimeout: this.options.acquireTimeoutMs });
  }

  newLock(id: string): Lock {
    this.ready ??= mkdir(this.directory, { recursive: true });
    // realpath: false, as the locked path (the lock is `${path}.lock`) never exists itself.
    return new FileLock(this, this.memory.newLock(id), join(this.directory, id), () => this.ready!);
  }
}

class FileLock implements Lock {
  private release: (() => Promise<void>) | undefined;

  constructor(
    private readonly locker: FileLocker,
    private readonly inProcess: Lock,
    private readonly path: string,
    private readonly ready: () => Promise<unknown>,
  ) {}

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const deadline = Date.now() + this.locker.options.acquireTimeoutMs;
    await this.inProcess.lock(signal, requestRelease);
    try {
      await this.ready();
      this.release = await this.acquireFile(signal, deadline, requestRelease);
    } catch (error) {
      await this.inProcess.unlock();
      throw error;
    }
  }

  async unlock(): Promise<void> {
    const release = this.release;
    this.release = undefined;
    try {
      // ERELEASED: the lock was compromised and is someone else's now; it must not be removed.
      if (release) await release().catch((error) => { if (error?.code !== "ERELEASED") throw error; });
    } finally {
      await this.inProcess.unlock();
    }
  }

  private async acquireFile(signal: AbortSignal, deadline: number, requestRelease: RequestRelease): Promise<() => Promise<void>> {
    const { pollMs, staleMs, updateMs } = this.locker.options;
    for (;;) {
      try {
        return await lockPath(this.path, {
          realpath: false,
          stale: staleMs,
          update: updateMs,
          retries: 0,
          onCompromised: (error) => {
            // The video, not the path: an upload id holds the upload's secret (./upload-ids.ts).
            logger("uploads").error({ video: videoIdOfUpload(basename(this.path)), err: error.message }, "lost the upload lock");
            Promise.resolve()
              .then(requestRelease)
              .catch(() => {});
          },
        });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOTDIR") {
          // A stale lock *file* left by the hand-written locker this one replaced.
          await rm(`${this.path}.lock`, { force: true });
          continue;
        }
        if (code !== "ELOCKED") throw error;
      }
      if (signal.aborted || Date.now() >= deadline) throw ERRORS.ERR_LOCK_TIMEOUT;
      await Bun.sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())));
    }
  }
}
