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
import { mkdir, rm } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";

export class Storage {
  readonly videosDir: string;
  readonly tmpDir: string;

  constructor(readonly dataDir: string) {
    this.videosDir = join(dataDir, "videos");
    this.tmpDir = join(dataDir, "tmp");
  }

  /** Creates the directories; the server also clears tmp/ (`sweep`) of uploads a crash cut short. */
  async init(sweep = false): Promise<void> {
    if (sweep) await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.videosDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  tempPath(): string {
    return join(this.tmpDir, `${crypto.randomUUID()}.part`);
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
