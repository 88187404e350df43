/**
 * A write that failed for want of space: the file system (ENOSPC, EDQUOT: DATA_DIR, tmp/, the
 * cache) or SQLite's file (SQLITE_FULL). Not the client's fault, nor the media's: uploads answer
 * 507 and keep nothing, jobs wait and run again, imports stop at once rather than retry.
 */
const CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);

/** What ffmpeg prints for the same (strerror of ENOSPC and EDQUOT): its errors carry no code. */
const MESSAGE = /No space left on device|Disk quota exceeded/;

export function isDiskFull(error: unknown): boolean {
  let current: unknown = error;
  // Wrapped by Drizzle ("Failed query", cause) or a stream error: a few causes deep at most.
  for (let depth = 0; depth < 5 && current !== null && typeof current === "object"; depth++) {
    const { code, message, cause } = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === "string" && CODES.has(code)) return true;
    if (typeof message === "string" && MESSAGE.test(message)) return true;
    current = cause;
  }
  return false;
}

/**
 * A job that met a full disk: not the media's fault, nor the source's. It waits and runs again,
 * the attempt not counted (src/queue/runner.ts), and what it was given is kept.
 */
export class DiskFull extends Error {
  override name = "DiskFull";
  readonly transient = true;
  constructor(what: string, cause: unknown) {
    super(`no space left on the server's disk ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
