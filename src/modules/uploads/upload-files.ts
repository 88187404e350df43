/**
 * The uploads directory, DATA_DIR/uploads, as @tus/file-store lays it out and Spool reads it: an
 * upload's bytes in `<upload id>`, its info file (declared length, creation date) in
 * `<upload id>.json`, and, once it was completed, its size in `<upload id>.done` (see
 * `completedSize`). Beside it, DATA_DIR/locks/uploads holds the cross-process upload locks
 * (./file-locker.ts). Filesystem only: no database, no tus server.
 */
import { copyFile, link, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { videoIdOfUpload } from "./upload-ids.ts";

/** Beside a completed upload's id: the size it had, kept after its bytes left the store (see `completedSize`). */
const COMPLETED_SUFFIX = ".done";
/** Six times the file locker's stale limit (10 s): a lock this old has no live holder. */
const ABANDONED_LOCK_MS = 60_000;

/** An upload whose every declared byte is stored, and the video it becomes. */
export interface CompleteUpload {
  uploadId: string;
  id: string;
  declared: number;
}

export class UploadFiles {
  readonly directory: string;
  /** The cross-process upload locks (./file-locker.ts): a directory `<upload id>.lock` each. */
  readonly locks: string;

  constructor(dataDir: string) {
    this.directory = join(dataDir, "uploads");
    this.locks = join(dataDir, "locks", "uploads");
  }

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
  }

  private dataPath(uploadId: string): string {
    return join(this.directory, uploadId);
  }

  private infoPath(uploadId: string): string {
    return `${this.dataPath(uploadId)}.json`;
  }

  private completedPath(uploadId: string): string {
    return this.dataPath(uploadId) + COMPLETED_SUFFIX;
  }

  /** The upload's info file, as @tus/file-store wrote it (throws when it cannot be read). */
  private async info(uploadId: string): Promise<{ size?: unknown; creation_date?: string }> {
    return JSON.parse(await readFile(this.infoPath(uploadId), "utf8")) as { size?: unknown; creation_date?: string };
  }

  /** Ids of the uploads in the store (data file plus info file). */
  async ids(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch {
      return [];
    }
    const present = new Set(names);
    return names.filter((n) => n.endsWith(".json") && present.has(n.slice(0, -5))).map((n) => n.slice(0, -5));
  }

  /** Ids of the videos whose uploads are in the store. */
  async videoIds(): Promise<string[]> {
    return (await this.ids()).map(videoIdOfUpload).filter((id): id is string => id !== null);
  }

  /** Ids of the completed uploads whose size is kept. */
  private async completedIds(): Promise<string[]> {
    const names = await readdir(this.directory).catch(() => [] as string[]);
    return names.filter((n) => n.endsWith(COMPLETED_SUFFIX)).map((n) => n.slice(0, -COMPLETED_SUFFIX.length));
  }

  /** When the upload was created: its info file's creation date, else its bytes' mtime (0 if neither can be read). */
  async createdAt(uploadId: string): Promise<number> {
    let created = NaN;
    try {
      const info = await this.info(uploadId);
      created = Date.parse(info.creation_date ?? "");
    } catch {
      // unreadable info file: judge by the data file's age
    }
    if (!Number.isFinite(created)) created = (await stat(this.dataPath(uploadId)).catch(() => undefined))?.mtimeMs ?? 0;
    return created;
  }

  /** The upload's declared length and its bytes' mtime when every declared byte is stored; else undefined. */
  async storedWhole(uploadId: string): Promise<{ declared: number; mtimeMs: number } | undefined> {
    let declared: unknown;
    try {
      declared = (await this.info(uploadId)).size;
    } catch {
      return undefined;
    }
    const stored = await stat(this.dataPath(uploadId)).catch(() => undefined);
    return typeof declared === "number" && stored?.size === declared ? { declared, mtimeMs: stored.mtimeMs } : undefined;
  }

  /**
   * The uploads in the store whose every byte is stored (a video's, with a declared length), those
   * last written at least `minAgeMs` before `now`.
   */
  async completeUploads(minAgeMs = 0, now = Date.now()): Promise<CompleteUpload[]> {
    const complete: CompleteUpload[] = [];
    for (const uploadId of await this.ids()) {
      const id = videoIdOfUpload(uploadId);
      const whole = id ? await this.storedWhole(uploadId) : undefined;
      if (!id || !whole || whole.mtimeMs + minAgeMs > now) continue;
      complete.push({ uploadId, id, declared: whole.declared });
    }
    return complete;
  }

  /** Puts the upload's bytes at `target`: a hard link (no copy) where the filesystem allows one, else a copy. */
  async linkData(uploadId: string, target: string): Promise<void> {
    try {
      await link(this.dataPath(uploadId), target);
    } catch {
      await copyFile(this.dataPath(uploadId), target);
    }
  }

  /**
   * The size of an upload that was completed and accepted, for UPLOAD_EXPIRY_MS after: tus
   * 1.0.0 has HEAD answer the offset of a completed upload too, and a client whose final PATCH's
   * answer was lost asks it; a 404 there made tus-js-client upload the whole file again, as a
   * second video. Undefined for any other upload (unknown, refused, still uploading).
   */
  async completedSize(uploadId: string): Promise<number | undefined> {
    try {
      const { size } = JSON.parse(await readFile(this.completedPath(uploadId), "utf8")) as { size?: unknown };
      return typeof size === "number" ? size : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records that the upload was completed at `size` (see `completedSize`). */
  async markCompleted(uploadId: string, size: number): Promise<void> {
    await writeFile(this.completedPath(uploadId), JSON.stringify({ size }));
  }

  /** The name of the lock that an upload's hand-over holds (one per upload, beside its own lock). */
  completionLockId(uploadId: string): string {
    return `${uploadId}${COMPLETED_SUFFIX}`;
  }

  /** Removes one upload's bytes and info file (idempotent). */
  async discardUpload(uploadId: string): Promise<void> {
    await rm(this.dataPath(uploadId), { force: true });
    await rm(this.infoPath(uploadId), { force: true });
  }

  /** Removes the bytes and info file of video `videoId`'s upload, if any, and what says it completed (idempotent). */
  async discardVideo(videoId: string): Promise<void> {
    for (const uploadId of await this.ids()) if (videoIdOfUpload(uploadId) === videoId) await this.discardUpload(uploadId);
    for (const uploadId of await this.completedIds()) if (videoIdOfUpload(uploadId) === videoId) await rm(this.completedPath(uploadId), { force: true });
  }

  /** Removes what completed uploads left (`completedSize`) once it is `maxAgeMs` old at `now`. */
  async sweepCompleted(maxAgeMs: number, now = Date.now()): Promise<void> {
    for (const uploadId of await this.completedIds()) {
      const path = this.completedPath(uploadId);
      const info = await stat(path).catch(() => undefined);
      if (info && info.mtimeMs + maxAgeMs <= now) await rm(path, { force: true });
    }
  }

  /**
   * Removes the locks of uploads that are gone, once nobody has refreshed them for
   * ABANDONED_LOCK_MS. A holder refreshes its lock every few seconds (./file-locker.ts), so these
   * are the locks of processes killed mid-PATCH: without this, one directory per such upload,
   * named with the upload's secret, stayed in DATA_DIR for good (a lock is otherwise removed only
   * by the next request for the same upload, which never comes once the upload has expired).
   */
  async sweepLocks(now = Date.now()): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.locks);
    } catch {
      return;
    }
    const present = new Set(await this.ids());
    for (const name of names) {
      if (!name.endsWith(".lock") || present.has(name.slice(0, -5))) continue;
      const path = join(this.locks, name);
      const info = await stat(path).catch(() => undefined);
      if (info && now - info.mtimeMs > ABANDONED_LOCK_MS) await rm(path, { recursive: true, force: true });
    }
  }
}
