/**
 * Where a video's files live: DATA_DIR/videos/<id>/, one directory per video so that everything
 * derived from it (renditions, posters) goes with it on delete. Uploads are written under
 * DATA_DIR/tmp and renamed into place only when complete, so nothing half-written is served.
 *
 *   videos/<id>/incoming        the received bytes while `processing` (no extension on purpose:
 *                               ffmpeg must not guess a format from a name)
 *   videos/<id>/source.<ext>    the stored file (faststart), streamed when `ready`
 *   videos/<id>/poster.jpg      the poster made at ingest
 *   videos/<id>/thumbs/         thumbnails generated on request
 */
import { mkdir, readdir, rm, rmdir } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { localPid, newOwnerId, ownerIsDead } from "../lib/process-identity.ts";

export class Storage {
  readonly videosDir: string;
  readonly tmpDir: string;
  /**
   * This process's own part of tmp/ (`tmp/<host>:<pid>:<random>/`). Several processes share a
   * DATA_DIR (the server, its workers, a CLI ingest, a transcode worker), so a starting server
   * may only sweep what a dead process left behind, never a live one's files in progress.
   */
  readonly ownTmpDir: string;

  constructor(readonly dataDir: string) {
    this.videosDir = join(dataDir, "videos");
    this.tmpDir = join(dataDir, "tmp");
    this.ownTmpDir = join(this.tmpDir, newOwnerId());
  }

  /** Creates the directories; the server also sweeps tmp/ (`sweep`) of what crashed processes left. */
  async init(sweep = false): Promise<void> {
    if (sweep) await this.sweepTmp();
    await mkdir(this.videosDir, { recursive: true });
    await mkdir(this.ownTmpDir, { recursive: true });
  }

  /**
   * Removes the tmp/ directories of processes on this host that are gone, and loose files from
   * versions before per-process directories. Directories of live processes and of other hosts
   * (a DATA_DIR shared over the network) are left alone.
   */
  async sweepTmp(): Promise<string[]> {
    const entries = await readdir(this.tmpDir, { withFileTypes: true }).catch(() => []);
    const removed: string[] = [];
    for (const entry of entries) {
      const path = join(this.tmpDir, entry.name);
      if (path === this.ownTmpDir) continue;
      const stale = entry.isDirectory() ? localPid(entry.name) !== null && ownerIsDead(entry.name) : true;
      if (!stale) continue;
      await rm(path, { recursive: true, force: true });
      removed.push(entry.name);
    }
    return removed;
  }

  /** Removes this process's tmp/ directory when it is empty (a clean exit leaves nothing behind). */
  async close(): Promise<void> {
    await rmdir(this.ownTmpDir).catch(() => {});
  }

  tempPath(): string {
    return join(this.ownTmpDir, `${crypto.randomUUID()}.part`);
  }

  videoDir(id: string): string {
    return join(this.videosDir, id);
  }

  /** The received bytes of a video being processed. */
  stagedPath(id: string): string {
    return join(this.videoDir(id), "incoming");
  }

  sourcePath(id: string, ext: string): string {
    return join(this.videoDir(id), ext ? `source.${ext}` : "source");
  }

  posterPath(id: string): string {
    return join(this.videoDir(id), "poster.jpg");
  }

  thumbsDir(id: string): string {
    return join(this.videoDir(id), "thumbs");
  }

  /** The path stored in the database: relative to DATA_DIR. */
  relative(path: string): string {
    return relative(this.dataDir, path);
  }

  /** Resolves a stored path, refusing anything that would leave DATA_DIR. */
  absolute(storagePath: string): string {
    const path = resolve(this.dataDir, storagePath);
    if (!path.startsWith(this.dataDir + sep)) throw new Error(`storage path escapes DATA_DIR: ${storagePath}`);
    return path;
  }

  async removeVideo(id: string): Promise<void> {
    await rm(this.videoDir(id), { recursive: true, force: true });
  }
}
