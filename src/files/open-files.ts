/**
 * Descriptors kept open for hot files, in the spirit of nginx's `open_file_cache` (issue 15).
 *
 * A `Bun.file(path)` body costs Bun an open, fstat and close per answer, the close on its thread
 * pool; a body on a descriptor opened once costs a pread. Measured on the bench machine (Bun
 * 1.4.5, one core, wrk on the other, random 64 KiB ranges of the 79 MiB main video, c=64): 9.5k
 * answers/s by path, 14.3k on a kept descriptor.
 *
 * Only for some answers, because of how Bun 1.4.5 sends a descriptor's bytes:
 * - It reads a body that starts at offset 0 with read(2), at the descriptor's position, which
 *   an earlier answer may have moved (`bytes=0-1` then got the wrong bytes): only ranges that
 *   start past 0 use a kept descriptor (the RAM tier holds every video's head anyway).
 * - Nothing tells JavaScript when an answer's body is sent, and a descriptor closed while a body
 *   still reads from it may meanwhile name another file (descriptor numbers are reused): a
 *   client could get another video's, or a secret's, bytes. So a descriptor no longer wanted is
 *   retired (given to no new answer) and closed only once the process has no request in flight
 *   at all (`server.pendingRequests`, which counts bodies still being sent). Only short answers
 *   (under 1 MiB, which Bun reads with pread rather than sendfile) use one, so long downloads
 *   never hold one.
 * - A retired descriptor whose file was deleted (no name links to it any more) does not wait
 *   for that moment to give the disk back: `/dev/null` is put in its place with dup2(2), which
 *   frees the inode at once and keeps the number taken until the quiet close. An answer still
 *   reading it gets end-of-file and is cut short, never another file's bytes: its video is gone.
 *   Where dup2 cannot be reached (bun:ffi or libc missing), the disk comes back at the quiet
 *   moment, or at a restart. Both counts are bounded; past them answers go out by path.
 *
 * Hand-written: no library keeps descriptors for Bun's native file bodies.
 */
import { closeSync, fstatSync, openSync } from "node:fs";
import type { BunFile } from "bun";
import { logger } from "../lib/log.ts";

/** Bun 1.4.5 reads bodies shorter than this with pread, and sends longer ones with sendfile. */
export const KEPT_DESCRIPTOR_ANSWER_LIMIT = 1024 * 1024;

export class Descriptor {
  /** Asked for since the last sweep. */
  used = true;
  /** Given to no new answer; closed at the next quiet moment. */
  retired = false;
  /** Its file was deleted and the descriptor now reads /dev/null (see `releaseDeleted`). */
  released = false;
  constructor(
    readonly key: string,
    readonly fd: number,
    readonly file: BunFile,
  ) {}
}

/** What the pool needs of an entity: its key, path, and the size and mtime it was stat'ed with. */
export interface DescribedFile {
  memoryKey: string;
  path: string;
  size: number;
  mtimeMs: number;
}

export interface OpenFilesOptions {
  /** Descriptors open for new answers at most (default 256); more files go out by path. */
  maxOpen?: number;
  /** Retired descriptors waiting for a quiet moment at most (default 256); then no more are opened. */
  maxRetired?: number;
  /** A descriptor not asked for during a whole sweep period is retired (default 10 s). */
  sweepMs?: number;
  /** While some are retired, how often a quiet moment is looked for (default 1 s). */
  closeCheckMs?: number;
}

export class OpenFiles {
  readonly maxOpen: number;
  readonly maxRetired: number;
  private readonly open = new Map<string, Descriptor>();
  /** Keys whose open failed or whose file did not match: not tried again before the next sweep. */
  private readonly refused = new Set<string>();
  private retired: Descriptor[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private closer: ReturnType<typeof setInterval> | undefined;
  /**
   * Whether no request is in flight in this process: the server sets it
   * (`server.pendingRequests === 0`). Until then retired descriptors are never closed.
   */
  private quiet: () => boolean = () => false;

  constructor(private readonly options: OpenFilesOptions = {}) {
    this.maxOpen = options.maxOpen ?? 256;
    this.maxRetired = options.maxRetired ?? 256;
  }

  /** Called by the server once it listens; starts the sweeps. */
  attach(quiet: () => boolean): void {
    this.quiet = quiet;
    this.timer ??= setInterval(() => this.sweep(), this.options.sweepMs ?? 10_000);
    this.timer.unref?.();
  }

  get openCount(): number {
    return this.open.size;
  }

  get retiredCount(): number {
    return this.retired.length;
  }

  /**
   * The kept descriptor of this file, opened on first use; undefined when the pool is full or
   * the file cannot be opened as the one the entity describes (the caller then uses its path).
   */
  acquire(file: DescribedFile): Descriptor | undefined {
    const held = this.open.get(file.memoryKey);
    if (held !== undefined) {
      held.used = true;
      return held;
    }
    if (this.refused.has(file.memoryKey) || this.open.size >= this.maxOpen || this.retired.length >= this.maxRetired) return undefined;
    let fd: number;
    try {
      fd = openSync(file.path, "r");
    } catch {
      this.refused.add(file.memoryKey);
      return undefined;
    }
    // The bytes the entity's validators describe: a file replaced since its stat is not kept.
    let same = false;
    try {
      const st = fstatSync(fd);
      same = st.isFile() && st.size === file.size && (file.mtimeMs === 0 || st.mtimeMs === file.mtimeMs);
    } catch {
      same = false;
    }
    if (!same) {
      closeSync(fd);
      this.refused.add(file.memoryKey);
      return undefined;
    }
    const descriptor = new Descriptor(file.memoryKey, fd, Bun.file(fd));
    this.open.set(descriptor.key, descriptor);
    return descriptor;
  }

  /** Retires what was not asked for since the last sweep, and closes retired ones if quiet. */
  sweep(): void {
    this.refused.clear();
    for (const descriptor of this.open.values()) {
      if (descriptor.used) descriptor.used = false;
      else this.retire(descriptor);
    }
    this.closeRetired();
  }

  /** Gives this file's descriptor to no new answer (its video was removed or replaced). */
  forget(key: string): void {
    const descriptor = this.open.get(key);
    if (descriptor) this.retire(descriptor);
    this.closeRetired();
  }

  private retire(descriptor: Descriptor): void {
    descriptor.retired = true;
    this.open.delete(descriptor.key);
    this.retired.push(descriptor);
    if (this.timer !== undefined && this.closer === undefined) {
      this.closer = setInterval(() => this.closeRetired(), this.options.closeCheckMs ?? 1000);
      this.closer.unref?.();
    }
  }

  /**
   * Closes the retired descriptors when no request is in flight (see the module comment); until
   * then, gives back the disk space of those whose files were deleted.
   */
  closeRetired(): void {
    if (this.retired.length === 0) return;
    if (!this.quiet()) return this.releaseDeleted();
    for (const descriptor of this.retired) closeSync(descriptor.fd);
    this.retired = [];
    clearInterval(this.closer);
    this.closer = undefined;
  }

  /** Points each retired descriptor whose file has no name left at /dev/null (one fstat each). */
  private releaseDeleted(): void {
    for (const descriptor of this.retired) {
      if (descriptor.released) continue;
      let deleted: boolean;
      try {
        deleted = fstatSync(descriptor.fd).nlink === 0;
      } catch {
        continue;
      }
      if (deleted && detach(descriptor.fd)) descriptor.released = true;
    }
  }

  /** How many retired descriptors no longer hold their (deleted) file. */
  get releasedCount(): number {
    let n = 0;
    for (const descriptor of this.retired) if (descriptor.released) n++;
    return n;
  }

  /** At shutdown, once the server has stopped: every descriptor is closed. */
  close(): void {
    clearInterval(this.timer);
    clearInterval(this.closer);
    this.timer = this.closer = undefined;
    for (const descriptor of this.open.values()) this.retire(descriptor);
    for (const descriptor of this.retired) closeSync(descriptor.fd);
    this.retired = [];
  }
}

/** What an entity carries to use the pool: the pool, and the descriptor it last got. */
export interface KeptDescriptor {
  descriptors: OpenFiles | undefined;
  descriptor?: Descriptor;
}

/**
 * The body for a range that starts past 0 and is shorter than KEPT_DESCRIPTOR_ANSWER_LIMIT: the
 * file on its kept descriptor when there is one, else `fallback` (the file by path).
 */
export function keptFile(entity: KeptDescriptor & DescribedFile, fallback: BunFile): BunFile {
  const pool = entity.descriptors;
  if (pool === undefined) return fallback;
  let descriptor = entity.descriptor;
  if (descriptor === undefined || descriptor.retired) {
    descriptor = pool.acquire(entity);
    if (descriptor === undefined) return fallback;
    entity.descriptor = descriptor;
  } else descriptor.used = true;
  return descriptor.file;
}

/** dup2(2) from libc through bun:ffi, loaded on first use; null where it cannot be. */
let dup2: ((from: number, to: number) => number) | null | undefined;
let devNull = -1;

/**
 * Puts /dev/null in place of `fd` (the number stays taken, the file is let go). Hand-written
 * with bun:ffi: Node's fs has no dup2, and a close would free the number for reuse.
 */
function detach(fd: number): boolean {
  if (dup2 === undefined) dup2 = loadDup2();
  if (dup2 === null) return false;
  if (devNull < 0) devNull = openSync("/dev/null", "r");
  return dup2(devNull, fd) === fd;
}

function loadDup2(): ((from: number, to: number) => number) | null {
  const library = process.platform === "darwin" ? "libSystem.B.dylib" : "libc.so.6";
  try {
    const { dlopen, FFIType } = require("bun:ffi") as typeof import("bun:ffi");
    const { symbols } = dlopen(library, { dup2: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
    return (from, to) => symbols.dup2(from, to);
  } catch (error) {
    logger("files").warn({ library, err: (error as Error).message }, "dup2 is not reachable: a deleted file's disk space comes back once no request is in flight");
    return null;
  }
}
