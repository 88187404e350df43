/**
 * Maps a URL path under /static/ to a file inside STATIC_DIR, or to nothing. The request path is
 * percent-decoded exactly once; every segment must be an ordinary, visible name; and the real
 * path (symlinks followed) must still lie inside the real root.
 */
import { realpath } from "node:fs/promises";
import { join, sep } from "node:path";

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

export class StaticRoot {
  /** The root's real path, re-resolved every `ttlMs` too: it may appear late, or be a symlink re-pointed at a new release. */
  private realRoot: { path: Promise<string | undefined>; expires: number } | undefined;
  /** Resolutions are reused for `ttlMs`, like file stats: realpath costs a syscall per segment. */
  private readonly resolved = new Map<string, { path: string | undefined; expires: number }>();

  constructor(
    readonly root: string,
    private readonly ttlMs = 1000,
    private readonly maxEntries = 10_000,
  ) {}

  private async rootPath(): Promise<string | undefined> {
    const now = Date.now();
    if (!this.realRoot || this.realRoot.expires <= now) {
      this.realRoot = { path: realpath(this.root).catch(() => undefined), expires: now + this.ttlMs };
    }
    return this.realRoot.path;
  }

  /** The absolute path of a file to serve, or undefined (→ 404). */
  async resolve(rawPath: string): Promise<string | undefined> {
    const now = Date.now();
    const hit = this.resolved.get(rawPath);
    if (hit && hit.expires > now) return hit.path;
    const path = await this.resolveUncached(rawPath);
    if (!hit && this.resolved.size >= this.maxEntries) this.resolved.delete(this.resolved.keys().next().value!);
    this.resolved.set(rawPath, { path, expires: now + this.ttlMs });
    return path;
  }

  private async resolveUncached(rawPath: string): Promise<string | undefined> {
    const segments = safeSegments(rawPath);
    const root = await this.rootPath();
    if (!segments || !root) return undefined;
    const candidate = join(root, ...segments);
    try {
      const real = await realpath(candidate);
      return real.startsWith(root + sep) ? real : undefined;
    } catch {
      return undefined;
    }
  }
}
