/**
 * Whether `path` is `dir` itself or lies below it. Both absolute; compared as written (no file
 * system access: real paths, when they matter, are the caller's to resolve). `/` holds everything,
 * and a sibling that only starts with the same characters (`/srv/data-public` beside `/srv/data`)
 * or a name beginning with two dots (`/srv/..data` in `/srv`) is told apart.
 */
import { isAbsolute, relative, sep } from "node:path";

export function isWithin(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}
