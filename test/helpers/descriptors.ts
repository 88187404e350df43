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
