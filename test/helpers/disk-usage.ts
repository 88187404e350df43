/**
 * Bytes of every file under a directory, as a test samples a bounded cache while it fills.
 * Counted by inode: a walk is not atomic, and a temporary file renamed into place between the
 * listing of tmp/ and that of its final directory would otherwise be counted twice (a block
 * cache within its bound once sampled 2 MB over it that way).
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

export async function filesBytes(dir: string): Promise<number> {
  const sizes = new Map<number, number>();
  const walk = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) await walk(child);
      else {
        const info = await stat(child).catch(() => null);
        if (info) sizes.set(info.ino, info.size);
      }
    }
  };
  await walk(dir);
  let total = 0;
  for (const size of sizes.values()) total += size;
  return total;
}
