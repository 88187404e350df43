/**
 * A directory of immutable cache files bounded by bytes, least recently used out first, that
 * several processes may share (WORKERS, servers on one machine). Used by the block cache in
 * front of object storage (src/storage/block-cache.ts) and by the materialised clips
 * (src/files/clip-store.ts): the file naming, what a file holds and how it is filled are theirs;
 * this is the part they share: where temporary files go, how a complete file becomes visible,
 * the use clock and eviction.
 *
 * - Layout: `dir/<2 hex>/<name>` (names the owner's pattern accepts; anything else is left
 *   alone), temporary files in `dir/tmp/<host>:<pid>:<random>`.
 * - A file is written under a temporary name, fsynced by its filler, and renamed into place
 *   (`place`): a cache file is either complete or absent, whatever crashes. Temporary files
 *   of processes that are gone (this host), or untouched for `staleTempMs`, are removed by scans.
 * - LRU: each process keeps the files it knows in use order (a Map), and stamps a file's mtime
 *   when it uses it (at most every `touchIntervalMs`), so the directory holds everyone's use
 *   times. Before a new file is renamed into place the filler makes room: when its count says the
 *   directory would pass `maxBytes` it rescans it (every process's files with their sizes and
 *   mtimes, at most every `rescanIntervalMs`) and unlinks the least recently used down to 90%.
 * - The bound: `reserve` makes room for a file *before* it is written and counts it from then on
 *   (its temporary file included) until `place` renames it into place or `release` gives the
 *   room back; when no room can be made it says no, and the filler keeps the bytes out of the
 *   directory. With `reserve`/`place`, this process's files plus its temporary files never pass
 *   `maxBytes`; with several processes filling at once, the directory can hold more by at most
 *   what the others filled since the last scan.
 * - `minAgeMs`: files used more recently than this (this process's `use`, which the index
 *   records on every call, or anyone's mtime stamp) are never evicted, even if that means not
 *   admitting a new file. So a file this process has just handed out by name stays for
 *   `minAgeMs` whoever fills, and with `minAgeMs > 2 * touchIntervalMs`, a process that stamps a
 *   file before serving it by name (as `use`/`useSync` do) never serves a name another process
 *   has just unlinked (but for one window: another process's stat of the file and its unlink).
 */
import { utimesSync } from "node:fs";
import { mkdir, readdir, rename, rm, stat, unlink, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { ownerIsDead } from "./process-identity.ts";

export interface DiskLruOptions {
  dir: string;
  maxBytes: number;
  /** The names of cache files (inside `dir/<2 hex>/`): only these are counted and evicted. */
  name: RegExp;
  /** How often a file in use gets its mtime refreshed (the cross-process LRU clock). Default 10 s. */
  touchIntervalMs?: number;
  /** How stale this process's view of the directory may be when it needs room. Default 5 s. */
  rescanIntervalMs?: number;
  /** Temporary files untouched this long were left by a dead filler and are removed on scans. Default 10 min. */
  staleTempMs?: number;
  /** Files used (mtime) more recently than this are not evicted. Default 0. */
  minAgeMs?: number;
}

interface Entry {
  size: number;
  /** Last use, ms since the epoch (ours, or the file's mtime when another process used it). */
  used: number;
  /** When we last stamped the file's mtime (or saw it stamped). */
  touched: number;
}

const LOW_WATER = 0.9;
const SUBDIR = /^[0-9a-f]{2}$/;
const HOST = hostname();

export class DiskLru {
  readonly dir: string;
  readonly tmpDir: string;
  readonly maxBytes: number;
  private readonly name: RegExp;
  private readonly touchIntervalMs: number;
  private readonly rescanIntervalMs: number;
  private readonly staleTempMs: number;
  private readonly minAgeMs: number;
  /** Known files in least- to most-recently-used order. */
  private readonly index = new Map<string, Entry>();
  private total = 0;
  /** Bytes of fills that made room and are being renamed into place. */
  private reserved = 0;
  private readonly madeDirs = new Set<string>();
  private roomLock: Promise<void> = Promise.resolve();
  private lastScan = 0;
  /** While a scan reads the directory: the files this process records meanwhile (see `scan`). */
  private recordedDuringScan: Set<string> | null = null;
  /**
   * This process's unlinks in flight, by path. The index forgets a file before its unlink is
   * done, so a stat meanwhile may still find it: whoever is about to look for a file on disk, or
   * rename one into its place, waits for its unlink first (`unlinked`).
   */
  private readonly unlinking = new Map<string, Promise<void>>();
  evictions = 0;
  /** Files not to evict now (being filled, or being read by their owner): the owner's say. */
  busy: (path: string) => boolean = () => false;
  /** Called for every file this process unlinks to make room (the owner drops what it knew of it). */
  onEvict: (path: string) => void = () => {};

  constructor(options: DiskLruOptions) {
    this.dir = options.dir;
    this.tmpDir = join(this.dir, "tmp");
    this.maxBytes = options.maxBytes;
    this.name = options.name;
    this.touchIntervalMs = options.touchIntervalMs ?? 10_000;
    this.rescanIntervalMs = options.rescanIntervalMs ?? 5_000;
    // A live fill keeps writing, so its file stays fresh.
    this.staleTempMs = options.staleTempMs ?? 10 * 60_000;
    this.minAgeMs = options.minAgeMs ?? 0;
  }

  /** Creates the directory, removes temporary files of dead fillers, learns what is cached, and keeps the bound. */
  async init(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
    await this.scan();
    // Kept under a larger bound (the setting was lowered since): back within this one now, not
    // at the next fill, which may never come.
    if (this.total > this.maxBytes) await this.makeRoom(0);
  }

  get files(): number {
    return this.index.size;
  }

  get bytes(): number {
    return this.total;
  }

  /** `dir/<first 2 characters of digest>/<name>`: where a file named from a hex digest lives. */
  pathFor(digest: string, name: string): string {
    return join(this.dir, digest.slice(0, 2), name);
  }

  /** A fresh temporary file name (same file system as the cache files, so `place` is a rename). */
  tempPath(): string {
    return join(this.tmpDir, `${HOST}:${process.pid}:${crypto.randomUUID()}`);
  }

  /** Whether this process knows the file (it may have been evicted by another one since). */
  has(path: string): boolean {
    return this.index.has(path);
  }

  /**
   * A use of a known file: most recently used now. Returns `true` when nothing needs checking
   * (stamped less than `touchIntervalMs` ago), `false` when this process does not know the file,
   * or "stamp" when the caller must stamp it (and so learn whether it still exists).
   */
  private hit(path: string, now: number): boolean | "stamp" {
    const entry = this.index.get(path);
    if (!entry) return false;
    this.index.delete(path);
    this.index.set(path, entry);
    entry.used = now;
    if (now - entry.touched < this.touchIntervalMs) return true;
    entry.touched = now;
    return "stamp";
  }

  /** Records a use; false when the file is unknown or turned out to be gone (then forgotten). */
  async use(path: string): Promise<boolean> {
    const now = Date.now();
    const hit = this.hit(path, now);
    if (hit !== "stamp") return hit;
    const seconds = now / 1000;
    if (await utimes(path, seconds, seconds).then(() => true, () => false)) return true;
    this.forget(path);
    return false;
  }

  /**
   * `use`, synchronously: on the hot path of a file about to be served by name. A stamp is one
   * utimes(2) per `touchIntervalMs` per file; it both refreshes the LRU clock and proves the file
   * is still there.
   */
  useSync(path: string): boolean {
    const now = Date.now();
    const hit = this.hit(path, now);
    if (hit !== "stamp") return hit;
    try {
      utimesSync(path, now / 1000, now / 1000);
      return true;
    } catch {
      this.forget(path);
      return false;
    }
  }

  /**
   * Resolves once an unlink of `path` this process has in flight (an eviction, a `remove`) is
   * done; at once when there is none. Before a stat that would `adopt` the file: found in that
   * window, it would be adopted and handed out by name just before it is gone.
   */
  unlinked(path: string): Promise<void> {
    return this.unlinking.get(path) ?? Promise.resolve();
  }

  private unlinkFile(path: string): Promise<void> {
    const done = unlink(path)
      .catch(() => {})
      .finally(() => {
        if (this.unlinking.get(path) === done) this.unlinking.delete(path);
      });
    this.unlinking.set(path, done);
    return done;
  }

  /**
   * A file found complete on disk (another process filled it): known from now on. `mtimeMs`: its
   * mtime when found, so that the next `use` stamps it (a file another process last used long
   * ago is not trusted to stay for `touchIntervalMs` unstamped; see `minAgeMs`).
   */
  adopt(path: string, size: number, mtimeMs?: number): void {
    this.record(path, size, Date.now(), mtimeMs);
  }

  /**
   * Makes room for a file of `size` bytes that is about to be written, and counts it from now on
   * (its temporary file too): true when it fits under `maxBytes`; then the caller must `place` or
   * `release` it. False when no room can be made (everything left is busy or too recent): the
   * file must not be written into the directory.
   */
  async reserve(size: number): Promise<boolean> {
    return this.makeRoom(size);
  }

  /** Gives back a reservation whose file will not be placed (its fill failed). */
  release(size: number): void {
    this.reserved -= size;
  }

  /**
   * Renames the complete, fsynced temporary file `temp` of a reservation of `size` bytes to
   * `path`; the reservation becomes the file's size in the count (never both, never neither).
   * Throws (and removes `temp`, releases the reservation) when the rename fails.
   */
  async place(temp: string, path: string, size: number): Promise<void> {
    try {
      await this.renameIntoPlace(temp, path);
    } catch (error) {
      this.reserved -= size;
      await rm(temp, { force: true });
      throw error;
    }
    this.reserved -= size;
    this.record(path, size, Date.now());
  }

  private async renameIntoPlace(temp: string, path: string): Promise<void> {
    // An unlink of the old file still in flight would otherwise remove the new one.
    await this.unlinked(path);
    const dir = join(path, "..");
    if (!this.madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.madeDirs.add(dir);
    }
    await rename(temp, path).catch(async (error: NodeJS.ErrnoException) => {
      // The directory was removed under a running process (an operator cleared the cache).
      if (error.code !== "ENOENT") throw error;
      await mkdir(dir, { recursive: true });
      await rename(temp, path);
    });
  }

  /** Removes a file (this process's decision, e.g. its source is gone). */
  async remove(path: string): Promise<void> {
    this.forget(path);
    await this.unlinkFile(path);
  }

  forget(path: string): void {
    const entry = this.index.get(path);
    if (!entry) return;
    this.index.delete(path);
    this.total -= entry.size;
  }

  private record(path: string, size: number, used: number, touched = used): void {
    const old = this.index.get(path);
    if (old) {
      this.total -= old.size;
      this.index.delete(path);
    }
    this.index.set(path, { size, used, touched });
    this.total += size;
    this.recordedDuringScan?.add(path);
  }

  /**
   * Evicts least recently used files until the reserved bytes and `extra` more fit, one caller
   * at a time per process; with room, `extra` is added to the reserved bytes (in the same step,
   * so two callers never both count on the same free bytes). False when the bound cannot be kept
   * (everything left is busy or too recent).
   */
  private makeRoom(extra: number): Promise<boolean> {
    const run = this.roomLock.then(async () => {
      const fits = () => this.total + this.reserved + extra <= this.maxBytes;
      if (!fits()) {
        if (Date.now() - this.lastScan >= this.rescanIntervalMs) await this.scan();
        const target = Math.floor(this.maxBytes * LOW_WATER);
        const now = Date.now();
        for (const [path, entry] of this.index) {
          if (this.total + this.reserved + extra <= target) break;
          if (this.busy(path)) continue;
          if (this.minAgeMs > 0) {
            // Used by this process too recently (no system call needed to know)...
            if (now - entry.used < this.minAgeMs) continue;
            // ...or by another one since our scan: ask the file itself.
            const info = await stat(path).catch(() => null);
            if (info && now - info.mtimeMs < this.minAgeMs) continue;
            // Adopted or used again while the stat ran: no longer the entry judged above.
            if (this.index.get(path) !== entry) continue;
          }
          this.forget(path);
          await this.unlinkFile(path);
          this.evictions++;
          this.onEvict(path);
        }
        if (!fits()) return false;
      }
      this.reserved += extra;
      return true;
    });
    this.roomLock = run.then(() => {}, () => {});
    return run;
  }

  /**
   * Rebuilds the index from the directory: every process's files with their sizes and mtimes
   * (use times), ordered least recently used first; drops dead fillers' temporary files.
   */
  async scan(): Promise<void> {
    this.lastScan = Date.now();
    const recorded = new Set<string>();
    this.recordedDuringScan = recorded;
    try {
      await this.rebuild(recorded);
    } finally {
      if (this.recordedDuringScan === recorded) this.recordedDuringScan = null;
    }
  }

  private async rebuild(recorded: Set<string>): Promise<void> {
    const found: [string, Entry][] = [];
    const subdirs = await readdir(this.dir, { withFileTypes: true }).catch(() => []);
    for (const sub of subdirs) {
      if (!sub.isDirectory() || !SUBDIR.test(sub.name)) continue;
      const names = await readdir(join(this.dir, sub.name)).catch(() => [] as string[]);
      for (const name of names) {
        if (!this.name.test(name)) continue;
        const path = join(this.dir, sub.name, name);
        const info = await stat(path).catch(() => null);
        if (!info) continue;
        const mine = this.index.get(path);
        const used = Math.max(info.mtimeMs, mine?.used ?? 0);
        found.push([path, { size: info.size, used, touched: mine?.touched ?? info.mtimeMs }]);
      }
    }
    // A file this process placed while the directory was being read (a fill is not under the
    // room lock a scan holds) is on disk, but not in `found` if its subdirectory was read before
    // its rename: kept from the index, or it would be on disk uncounted and the bound passed by it
    // (a browser test saw 9.9 MB in an 8 MiB cache).
    const seen = new Set(found.map(([path]) => path));
    for (const path of recorded) {
      const entry = this.index.get(path);
      if (entry && !seen.has(path)) found.push([path, entry]);
    }
    found.sort((a, b) => a[1].used - b[1].used);
    this.index.clear();
    this.total = 0;
    for (const [path, entry] of found) {
      this.index.set(path, entry);
      this.total += entry.size;
    }
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const path = join(this.tmpDir, name);
      const info = await stat(path).catch(() => null);
      if (!info) continue;
      // `<host>:<pid>:<random>`: a filler on this host that is gone left it (older names: by age only).
      if (ownerIsDead(name) || this.lastScan - info.mtimeMs >= this.staleTempMs) await rm(path, { force: true });
    }
  }
}
