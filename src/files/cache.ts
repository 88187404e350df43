/**
 * A small open-file cache in the spirit of nginx's `open_file_cache`: a file's stat and derived
 * headers are reused for `ttlMs`, after which the next request stats it again. Files that vanish
 * or change are noticed within that window; the hot path does no syscall in between.
 */
import { stat } from "node:fs/promises";
import { makeEntity, variantKey, type FileEntity, type ServeOptions } from "./entity.ts";

interface Slot {
  entity: FileEntity;
  expires: number;
}

export class FileCache {
  private readonly slots = new Map<string, Slot>();

  constructor(
    readonly ttlMs = 1000,
    private readonly maxEntries = 10_000,
  ) {}

  /**
   * The entity for a regular file served with `options`, or undefined when it is missing or not
   * a file. Each set of options has its own entry (`variantKey`): several variants of one path
   * (inline and download, public and private) coexist.
   */
  async lookup(path: string, options: ServeOptions = {}): Promise<FileEntity | undefined> {
    const key = variantKey(path, options);
    const now = Date.now();
    const slot = this.slots.get(key);
    if (slot && slot.expires > now) return slot.entity;
    const entity = await statEntity(path, options);
    if (!entity) {
      this.slots.delete(key);
      return undefined;
    }
    // Keep the same object when nothing changed, so identity-based callers stay cheap. "Nothing"
    // is the tag (the stat's full identity, see statEtag) and the exact mtime too: with a tag
    // given in `options` the tag alone would keep an entity whose mtime the RAM tier rejects.
    const same = slot && slot.entity.size === entity.size && slot.entity.etag === entity.etag && slot.entity.mtimeMs === entity.mtimeMs;
    const reused = same ? slot.entity : entity;
    if (!slot && this.slots.size >= this.maxEntries) {
      const oldest = this.slots.keys().next().value;
      if (oldest !== undefined) this.slots.delete(oldest);
    }
    this.slots.set(key, { entity: reused, expires: now + this.ttlMs });
    return reused;
  }

  forget(prefix: string): void {
    for (const key of this.slots.keys()) if (key.startsWith(prefix)) this.slots.delete(key);
  }
}

export async function statEntity(path: string, options: ServeOptions = {}): Promise<FileEntity | undefined> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return undefined;
    return makeEntity(path, info.size, info.mtimeMs, options, { ino: info.ino, ctimeMs: info.ctimeMs });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EACCES" || code === "ELOOP" || code === "ENAMETOOLONG") return undefined;
    throw error;
  }
}
