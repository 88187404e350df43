/** This test process's open file descriptors, from /proc (Linux). */
import { readdirSync, readlinkSync } from "node:fs";

/** How many of this process's descriptors name `path`, deleted ("<path> (deleted)") or not. */
export function descriptorsOn(path: string): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const link = readlinkSync(`/proc/self/fd/${fd}`);
      if (link === path || link === `${path} (deleted)`) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

/**
 * `descriptorsOn` once it reads `want`, or after a second: Bun closes the descriptor of an
 * answer by path on its thread pool, a moment after the answer has arrived.
 */
export async function settledDescriptorsOn(path: string, want: number): Promise<number> {
  const deadline = Date.now() + 1000;
  let n = descriptorsOn(path);
  while (n !== want && Date.now() < deadline) {
    await Bun.sleep(10);
    n = descriptorsOn(path);
  }
  return n;
}
