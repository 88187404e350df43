/**
 * Where a video's files live: DATA_DIR/videos/<id>/, one directory per video so that everything
 * derived from it (renditions, posters) goes with it on delete. Uploads are written under
 * DATA_DIR/tmp and renamed into place only when complete, so nothing half-written is served.
 *
 *   videos/<id>/incoming        the received bytes while `processing` (no extension on purpose:
 *                               ffmpeg must not guess a format from a name); with STORAGE=s3
 *                               also put in the bucket, since the ingest job runs on whichever
 *                               machine's worker claims it
 *   videos/<id>/source.<ext>    the stored file (faststart), streamed when `ready`
 *   videos/<id>/poster.jpg      the poster made at ingest
 *   videos/<id>/thumbs/         thumbnails generated on request
 *
 * With STORAGE=s3 (`objects` set) the same relative paths are the objects' keys: a video is
 * processed here, `upload`ed when complete, and its local directory removed once it is ready;
 * removing a video removes its objects too.
 */
import { accessSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import { mkdir, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { errorFields, logger } from "../lib/log.ts";
import { StartupError } from "../lib/startup.ts";
import { localPid, newOwnerId, ownerIsDead } from "../lib/process-identity.ts";
import { StorageUnavailable, videoKeys, type ObjectStore } from "../storage/object-store.ts";
import type { OrphanSource } from "../storage/orphans.ts";
import { isVideoId } from "./ids.ts";

/**
 * DATA_DIR holds private (signed) videos, the tus uploads (whose file names are their upload
 * capabilities), the database and the generated secrets: when Spool creates it, only its owner
 * may enter it (0700, as PostgreSQL makes its data directory), so other local users read none of
 * it whatever the modes of the files inside. An existing one is left as it is: "open" says that
 * others may enter it, for a warning.
 */
export function prepareDataDir(dir: string): "created" | "private" | "open" {
  // A DATA_DIR that cannot be used is refused here, with one line naming it (exit 2), before the
  // warning about its mode: a regular file, /dev/null, a path under a file, or a directory this
  // user cannot write used to end in a raw EEXIST/EACCES stack from the secrets' mkdir, after a
  // misleading "chmod 700 it".
  if (!existsSync(dir)) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw dataDirError(dir, "cannot be created", error);
    }
    return "created";
  }
  let stats;
  try {
    stats = statSync(dir);
  } catch (error) {
    throw dataDirError(dir, "cannot be read", error);
  }
  if (!stats.isDirectory()) throw new StartupError(`DATA_DIR=${dir} is not a directory (it is ${stats.isFile() ? "a file" : "a device or other special file"}): set DATA_DIR to a directory, or to a path where one can be created`, 2);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw dataDirError(dir, "cannot be written", error);
  }
  return (stats.mode & 0o077) === 0 ? "private" : "open";
}

function dataDirError(dir: string, what: string, error: unknown): StartupError {
  const { code, message } = error as NodeJS.ErrnoException;
  const uid = process.getuid?.();
  const user = uid === undefined ? "this user" : `this user (uid ${uid})`;
  const why = code === "ENOTDIR" || code === "EEXIST" ? "a part of the path is a file" : code === "EACCES" || code === "EPERM" ? `permission denied to ${user}` : code === "EROFS" ? "a read-only file system" : (code ?? message);
  return new StartupError(`DATA_DIR=${dir} ${what} (${why}): make it a directory ${user} can write, or set DATA_DIR elsewhere`, 2);
}

/**
 * The tmp/ owners of this process's live Storages. A directory under this process's pid that is
 * not among them is a previous life's: a restarted container's pid 1 has the same pid every time.
 */
const ownersHere = new Set<string>();

/** Whether the process a tmp/ directory is named after is certainly gone (see ownersHere). */
function tmpOwnerGone(owner: string): boolean {
  const pid = localPid(owner);
  if (pid === null) return false;
  return pid === process.pid ? !ownersHere.has(owner) : ownerIsDead(owner);
}

export class Storage {
  readonly videosDir: string;
  readonly tmpDir: string;
  /**
   * This process's own part of tmp/ (`tmp/<host>:<pid>:<random>/`). Several processes share a
   * DATA_DIR (the server, its workers, a CLI ingest, a transcode worker), so a starting server
   * may only sweep what a dead process left behind, never a live one's files in progress.
   */
  readonly ownTmpDir: string;

  constructor(
    readonly dataDir: string,
    /** The bucket media lives in (STORAGE=s3); null: the files under DATA_DIR are the media. */
    readonly objects: ObjectStore | null = null,
  ) {
    this.videosDir = join(dataDir, "videos");
    this.tmpDir = join(dataDir, "tmp");
    this.ownTmpDir = join(this.tmpDir, newOwnerId());
  }

  /** Creates the directories; the server also sweeps tmp/ (`sweep`) of what crashed processes left. */
  async init(sweep = false): Promise<void> {
    ownersHere.add(basename(this.ownTmpDir));
    if (sweep) await this.sweepTmp();
    await mkdir(this.videosDir, { recursive: true });
    await mkdir(this.ownTmpDir, { recursive: true });
  }

  /**
   * Removes the tmp/ directories of processes on this host that are gone (a previous life of
   * this process's pid included), and loose files from versions before per-process directories.
   * Directories of live processes and of other hosts (a DATA_DIR shared over the network) are
   * left alone.
   */
  async sweepTmp(): Promise<string[]> {
    const entries = await readdir(this.tmpDir, { withFileTypes: true }).catch(() => []);
    const removed: string[] = [];
    for (const entry of entries) {
      const path = join(this.tmpDir, entry.name);
      if (path === this.ownTmpDir) continue;
      if (entry.isDirectory() && !tmpOwnerGone(entry.name)) continue;
      await rm(path, { recursive: true, force: true });
      removed.push(entry.name);
    }
    return removed;
  }

  /** Removes this process's tmp/ directory when it is empty (a clean exit leaves nothing behind). */
  async close(): Promise<void> {
    ownersHere.delete(basename(this.ownTmpDir));
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

  /**
   * STORAGE=s3: puts a processed video's stored file (`storagePath`, also its key) and its
   * poster into the bucket. Resolves once the objects are complete (multipart uploads included).
   */
  async upload(id: string, storagePath: string): Promise<void> {
    if (!this.objects) return;
    await this.objects.putFile(storagePath, this.absolute(storagePath));
    const poster = this.posterPath(id);
    if (await stat(poster).then(() => true, () => false)) await this.objects.putFile(videoKeys.poster(id), poster);
  }

  /**
   * STORAGE=s3: the received bytes (the staged file) into the bucket too, so that the ingest job
   * can run on any machine's worker (servers and workers share the database and the bucket, not
   * their disks). False without a bucket.
   */
  async shareStaged(id: string): Promise<boolean> {
    if (!this.objects) return false;
    await this.objects.putFile(videoKeys.incoming(id), this.stagedPath(id));
    return true;
  }

  /**
   * STORAGE=s3: `shareStaged`, for received bytes this machine has and the bucket does not (it
   * did not answer when they arrived). False when there is nothing to share.
   */
  async shareStagedIfMissing(id: string): Promise<boolean> {
    if (!this.objects || !(await stat(this.stagedPath(id)).then(() => true, () => false))) return false;
    if (await this.objects.stat(videoKeys.incoming(id))) return false;
    return this.shareStaged(id);
  }

  /**
   * STORAGE=s3: the received bytes from the bucket when this machine does not have them (another
   * server accepted the upload). False when the bucket has none either.
   */
  async fetchStaged(id: string): Promise<boolean> {
    if (!this.objects) return false;
    const key = videoKeys.incoming(id);
    const info = await this.objects.stat(key);
    if (!info) return false;
    const staged = this.stagedPath(id);
    const part = `${staged}.${crypto.randomUUID().slice(0, 8)}.part`;
    await mkdir(this.videoDir(id), { recursive: true });
    try {
      if (info.size > 0) await Bun.write(part, new Response((await this.objects.read(key, { start: 0, end: info.size - 1 })).stream));
      else await Bun.write(part, "");
      const got = (await stat(part)).size;
      if (got !== info.size) throw new StorageUnavailable(`the received bytes of video ${id} came back short from the bucket (${got} of ${info.size})`, `get ${key}`);
      await rename(part, staged);
    } finally {
      await rm(part, { force: true });
    }
    return true;
  }

  /** STORAGE=s3: the bucket's copy of the received bytes, once processed (a bucket that fails now leaves it to the video's deletion). */
  async dropShared(id: string): Promise<void> {
    if (!this.objects) return;
    await this.objects.delete(videoKeys.incoming(id)).catch((error: unknown) => {
      logger("storage").warn({ video: id, ...errorFields(error) }, "the bucket's copy of a processed upload was left");
    });
  }

  /** Ids of the videos with a local directory (STORAGE=s3: working files only). */
  async localIds(): Promise<string[]> {
    return (await readdir(this.videosDir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name);
  }

  /**
   * Local storage's videos for the orphan sweep: each video directory, dated by its own mtime
   * (which moves whenever a file is added, renamed or removed in it).
   */
  orphanSource(): OrphanSource {
    return {
      videos: () => this.datedVideoDirs(),
      remove: async (id) => {
        const dir = this.videoDir(id);
        const files = (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile()).length;
        await rm(dir, { recursive: true, force: true });
        return files;
      },
    };
  }

  private async *datedVideoDirs(): AsyncIterable<[string, number]> {
    for (const id of await this.localIds()) {
      if (!isVideoId(id)) continue;
      const info = await stat(this.videoDir(id)).catch(() => null);
      if (info) yield [id, info.mtimeMs];
    }
  }

  /** Removes a video's local directory only (its working files, once they are in the bucket). */
  async removeLocal(id: string): Promise<void> {
    await rm(this.videoDir(id), { recursive: true, force: true });
  }

  /**
   * Removes a video's files and objects. A bucket that cannot answer now does not fail the
   * removal: the row is gone by then, and the orphan sweep (src/storage/orphans.ts) removes the
   * objects later.
   */
  async removeVideo(id: string): Promise<void> {
    await rm(this.videoDir(id), { recursive: true, force: true });
    if (!this.objects) return;
    try {
      await this.objects.deletePrefix(videoKeys.prefix(id));
    } catch (error) {
      if (!(error instanceof StorageUnavailable)) throw error;
      logger("storage").warn({ video: id, ...errorFields(error) }, "objects of a removed video left for the orphan sweep");
    }
  }
}
