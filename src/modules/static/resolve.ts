/**
 * Maps a URL path under /static/ to a file inside STATIC_DIR, or to nothing. The request path is
 * percent-decoded exactly once; every segment must be an ordinary, visible name; and the real
 * path (symlinks followed) must still lie inside the real root, with no dot segment below it,
 * and outside the library's own files (DATA_DIR and the like, `excluded`).
 */
import { realpath } from "node:fs/promises";
import { join, sep } from "node:path";
import { isWithin } from "../../lib/within.ts";

/** Pure: the decoded, checked segments of a raw (still percent-encoded) relative path. */
export function safeSegments(rawPath: string): string[] | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return undefined; // malformed percent-encoding
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return undefined;
  const segments = decoded.split("/");
  if (segments.length === 0) return undefined;
  for (const segment of segments) {
    // Empty (//), "." and ".." segments, and dotfiles (.env, .git) are never served.
    if (segment === "" || segment.startsWith(".")) return undefined;
  }
  return segments;
}

/**
 * Longest raw (still percent-encoded) path looked at: Linux's PATH_MAX. Longer ones are a 404
 * before any decoding or caching, as nginx's static module answers ENAMETOOLONG (its 414 is for
 * a request line past its 8 KiB header buffers, a limit of the server, not of the file). Only a
 * mostly percent-encoded path (3 characters a byte) over 1,365 bytes could name a real file.
 */
export const MAX_RAW_PATH = 4096;

/** What a URL under /static/ names: the file to send, and the URL's own last segment, decoded. */
export interface StaticFile {
  path: string;
  /** The type comes from this, not from `path`: a link `app.js` → `build/app-3f2a` is script (as in nginx). */
  name: string;
}

interface Resolution {
  file: StaticFile | undefined;
  expires: number;
  /** What this entry counts against `maxBytes`: its key and path lengths. */
  bytes: number;
}

export class StaticRoot {
  /** The root's real path, re-resolved every `ttlMs` too: it may appear late, or be a symlink re-pointed at a new release. */
  private realRoot: { path: Promise<string | undefined>; expires: number } | undefined;
  /**
   * Resolutions are reused for `ttlMs`, like file stats: realpath costs a syscall per segment.
   * Misses are kept too (a flood of 404s must not cost syscalls each), so the map is bounded by
   * the characters it holds, not only by entries: 10,000 keys of 15 KB each once took 300 MB.
   * Entries are in insertion order, which is expiry order (all live `ttlMs`), so expired ones
   * are swept from the front.
   */
  private readonly resolved = new Map<string, Resolution>();
  private heldBytes = 0;

  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly excluded: readonly string[];
  /** The real paths of `excluded`, re-resolved with the root's. */
  private realExcluded: Promise<string[]> = Promise.resolve([]);

  /**
   * `excluded`: directories and files never served, whatever path reaches them (config.ts
   * refuses a STATIC_DIR that overlaps them by name; this catches one that reaches them through
   * a symlink, such as a STATIC_DIR linked to DATA_DIR's parent).
   */
  constructor(
    readonly root: string,
    private readonly ttlMs = 1000,
    { maxEntries = 10_000, maxBytes = 1024 * 1024, excluded = [] as readonly string[] } = {},
  ) {
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
    this.excluded = excluded;
  }

  /** Entries and characters held: for tests and metrics. */
  get cacheSize(): { entries: number; bytes: number } {
    return { entries: this.resolved.size, bytes: this.heldBytes };
  }

  private async rootPath(): Promise<string | undefined> {
    const now = Date.now();
    if (!this.realRoot || this.realRoot.expires <= now) {
      this.realRoot = { path: realpath(this.root).catch(() => undefined), expires: now + this.ttlMs };
      // One that does not exist yet is refused by its name until it does.
      this.realExcluded = Promise.all(this.excluded.map((path) => realpath(path).catch(() => path)));
    }
    return this.realRoot.path;
  }

  /** The file to serve for a raw relative path, or undefined (→ 404). */
  async resolve(rawPath: string): Promise<StaticFile | undefined> {
    if (rawPath.length > MAX_RAW_PATH) return undefined;
    const now = Date.now();
    const hit = this.resolved.get(rawPath);
    if (hit && hit.expires > now) return hit.file;
    const file = await this.resolveUncached(rawPath);
    this.remove(rawPath); // re-inserted at the end, so the map stays in expiry order
    const entry = { file, expires: now + this.ttlMs, bytes: rawPath.length + (file ? file.path.length + file.name.length : 0) };
    this.sweep(now, entry.bytes);
    this.resolved.set(rawPath, entry);
    this.heldBytes += entry.bytes;
    return file;
  }

  /** Drops expired entries, then the oldest, until one more entry of `bytes` fits both bounds. */
  private sweep(now: number, bytes: number): void {
    for (const [key, entry] of this.resolved) {
      const fits = this.resolved.size < this.maxEntries && this.heldBytes + bytes <= this.maxBytes;
      if (fits && entry.expires > now) return;
      this.remove(key);
    }
  }

  private remove(key: string): void {
    const entry = this.resolved.get(key);
    if (!entry) return;
    this.resolved.delete(key);
    this.heldBytes -= entry.bytes;
  }

  private async resolveUncached(rawPath: string): Promise<StaticFile | undefined> {
    const segments = safeSegments(rawPath);
    const root = await this.rootPath();
    if (!segments || !root) return undefined;
    const candidate = join(root, ...segments);
    try {
      const real = await realpath(candidate);
      if (!real.startsWith(root + sep)) return undefined;
      // A symlink may lead to a dotfile or into a dot directory inside the root (static/x →
      // .env): what is below the root must be visible in the real path too, not only in the URL.
      if (real.slice(root.length + 1).split(sep).some((segment) => segment.startsWith("."))) return undefined;
      for (const excluded of await this.realExcluded) if (isWithin(real, excluded)) return undefined;
      return { path: real, name: segments[segments.length - 1]! };
    } catch {
      return undefined;
    }
  }
}
