/**
 * fsync(2) at the moments that make bytes visible: a file before the database row that names it
 * commits (and before the client hears 201), and the directory whose entries a rename or a new
 * file changed. A process crash needs none of this (the kernel keeps what was written); a power
 * loss or a kernel crash does: without it, ext4 and XFS can come back with a committed row that
 * names an empty or short file, or no file at all, for bytes the client was told were stored.
 *
 * Node's `FileHandle.sync()` is fsync(2) on Linux, and a directory opened read-only can be
 * fsynced there (how its entries are made durable). Where a platform refuses to fsync a
 * directory (EISDIR, EINVAL, EPERM, EBADF: some file systems, Windows) there is nothing more to
 * do, and that refusal is not an error.
 */
import { mkdir, open, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";

const DIRECTORY_SYNC_UNSUPPORTED = new Set(["EISDIR", "EINVAL", "EPERM", "EBADF", "ENOTSUP"]);

/** fsync(2) of `path`, opened read-only; `tolerated`: error codes that mean "nothing to do here". */
async function sync(path: string, tolerated?: ReadonlySet<string>): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } catch (error) {
    if (!tolerated?.has((error as NodeJS.ErrnoException).code ?? "")) throw error;
  } finally {
    await handle.close();
  }
}

/** Flushes a file's bytes and metadata to the disk. */
export function syncFile(path: string): Promise<void> {
  return sync(path);
}

/** Makes a directory's entries (files created, renamed into or out of it) durable. */
export function syncDirectory(path: string): Promise<void> {
  return sync(path, DIRECTORY_SYNC_UNSUPPORTED);
}

/** Every file and directory under `dir`, and `dir` itself (an HLS ladder before it is published). */
export async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else if (entry.isFile()) await syncFile(path);
  }
  await syncDirectory(dir);
}

/** `mkdir -p` whose new directories are durable entries of their parents. */
export async function makeDirectoryDurably(path: string): Promise<void> {
  const first = await mkdir(path, { recursive: true });
  if (first === undefined) return;
  for (let dir = path; dir !== dirname(first) && dir !== dirname(dir); dir = dirname(dir)) await syncDirectory(dirname(dir));
}
