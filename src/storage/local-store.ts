/**
 * ObjectStore on the local disk (`STORAGE=local`, the default): key `k` is the file
 * DATA_DIR/k, exactly today's layout (src/modules/videos/storage.ts). Puts are copied next to
 * their destination and renamed into place, so a reader never sees half a file, and synced
 * before and after the rename (src/lib/durable.ts), so a power loss cannot leave an empty one.
 */
import { copyFile, readdir, rename, rm, stat, unlink, access } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { makeDirectoryDurably, syncDirectory, syncFile } from "../lib/durable.ts";
import {
  absoluteRange,
  checkKey,
  eachLimit,
  ObjectNotFound,
  StorageUnavailable,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  type ReadOptions,
  type ReadRange,
} from "./object-store.ts";

const missing = (error: unknown) => (error as NodeJS.ErrnoException)?.code === "ENOENT" || (error as NodeJS.ErrnoException)?.code === "ENOTDIR";

export class LocalStore implements ObjectStore {
  readonly kind = "local" as const;
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  localPath(key: string): string {
    checkKey(key);
    const path = join(this.root, key);
    if (!path.startsWith(this.root + sep)) throw new RangeError(`object key escapes the data directory: ${key}`);
    return path;
  }

  private dirOf(prefix: string): string {
    checkKey(prefix, "prefix");
    return join(this.root, prefix);
  }

  async putFile(key: string, path: string, _options?: PutOptions): Promise<void> {
    const dest = this.localPath(key);
    await makeDirectoryDurably(dirname(dest));
    const part = `${dest}.${crypto.randomUUID()}.part`;
    try {
      await copyFile(path, part);
      await syncFile(part);
      await rename(part, dest);
      await syncDirectory(dirname(dest));
    } catch (error) {
      await rm(part, { force: true });
      throw error;
    }
  }

  async putDirectory(prefix: string, dir: string): Promise<string[]> {
    this.dirOf(prefix);
    const files = await filesUnder(dir);
    const keys = files.map((file) => prefix + file.split(sep).join("/"));
    await eachLimit(files, 8, (file) => this.putFile(prefix + file.split(sep).join("/"), join(dir, file)));
    return keys;
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const info = await stat(this.localPath(key));
      return info.isFile() ? { key, size: info.size, lastModified: info.mtime } : null;
    } catch (error) {
      if (missing(error)) return null;
      throw error;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async read(key: string, range: ReadRange, options: ReadOptions = {}): Promise<ObjectBody> {
    const info = await this.stat(key);
    if (!info) throw new ObjectNotFound(key);
    const { start, end } = absoluteRange(range, options.size ?? info.size);
    const stream = Bun.file(this.localPath(key)).slice(start, end + 1).stream();
    return { stream, start, end, size: info.size };
  }

  presign(): null {
    return null;
  }

  async delete(key: string): Promise<void> {
    await unlink(this.localPath(key)).catch((error) => {
      if (!missing(error)) throw error;
    });
  }

  async deletePrefix(prefix: string): Promise<number> {
    const dir = this.dirOf(prefix);
    const count = (await filesUnder(dir)).length;
    await rm(dir, { recursive: true, force: true });
    return count;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const dir = this.dirOf(prefix);
    for (const file of (await filesUnder(dir)).sort()) {
      const info = await this.stat(prefix + file.split(sep).join("/"));
      if (info) yield info;
    }
  }

  async check(): Promise<void> {
    try {
      await access(this.root);
    } catch (error) {
      throw new StorageUnavailable(`data directory ${this.root} is not reachable`, "check", { cause: error });
    }
  }
}

/** Files under `dir`, as paths relative to it (none when it does not exist); `.part` files in flight are skipped. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((error) => {
    if (missing(error)) return [];
    throw error;
  });
  return entries
    .filter((entry) => entry.isFile() && !entry.name.endsWith(".part"))
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}
