/**
 * Imports from a URL: `POST /api/videos` with `{"url": ...}` and `bun run ingest https://...`.
 *
 *   start(url) ── check (400) ──▶ begin (row `importing`) + an `import` job ──▶ 201
 *                                      │ any worker: runImport(id, url) (./job.ts)
 *                                      ▼
 *                       downloadToFile (src/media/import) ──▶ ingest.accept ──▶ processing ──▶ ready
 *                                      │                            │
 *                                      └── failed: "Import from host failed: source answered 404 Not Found",
 *                                          not media: the upload's 415 message; no bytes kept
 *
 * `runImport` is the whole background step (download, then hand over to the ingest pipeline),
 * run by the `import` job in the durable queue: a restart mid-download runs it again from the
 * start (the partial file was this process's temporary file), a delete cancels it.
 */
import { DiskFull, isDiskFull } from "../../lib/disk-full.ts";
import { EventEmitter } from "node:events";
import { rm } from "node:fs/promises";
import type { Playback, VideoRow } from "../../db/schema.ts";
import { HttpError } from "../../http/errors.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import { isVideoId } from "../../library/ids.ts";
import { errorFields, logger } from "../../lib/log.ts";
import type { DownloadProgress } from "../../media/import/download.ts";
import { filenameFor } from "../../media/import/filename.ts";
import { ImportError } from "../../media/import/errors.ts";
import { bareHost, checkSourceUrl, type ImportPolicy } from "../../media/import/policy.ts";
import type { IngestPipeline } from "../ingest/pipeline.ts";
import type { JobQueue } from "../../queue/jobs.ts";

const log = logger("import");

/**
 * The downloader, loaded by the first import this process runs: it brings node:http, node:https
 * and node:zlib, about 5 MiB of resident memory that a server which never imports would hold.
 */
const downloader = () => import("../../media/import/download.ts").then((m) => m.downloadToFile);

export interface ImportSettings extends ImportPolicy {
  /** MAX_UPLOAD_BYTES: an import may be as large as an upload. */
  maxBytes: number;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  minBytesPerSecond?: number;
  maxDurationMs?: number;
  maxRedirects?: number;
}

export interface ImportMeta {
  title?: string;
  playback?: Playback;
  /** The new video's id (the CLI names it first, to remove it if interrupted); otherwise a random one. */
  id?: string;
}

export interface ImportProgress extends DownloadProgress {
  id: string;
}

/** What an `import` job carries. */
export interface ImportPayload {
  url: string;
}

/** Where imports' download progress goes between processes (SpoolDb.publish). */
const PROGRESS_TOPIC = "import_progress";

/** Whether a value from another process (NOTIFY, IPC) is an ImportProgress. */
export function isImportProgress(value: unknown): value is ImportProgress {
  const e = value as Partial<ImportProgress> | null;
  const count = (n: unknown) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
  return !!e && typeof e.id === "string" && isVideoId(e.id) && count(e.bytes) && (e.total === null || count(e.total));
}

/** Another process's progress message, or undefined when it is not one. */
function progressEvent(message: string): ImportProgress | undefined {
  try {
    const e: unknown = JSON.parse(message);
    if (isImportProgress(e)) return { id: e.id, bytes: e.bytes, total: e.total };
  } catch {
    // not JSON: not ours
  }
  return undefined;
}

/** The 400 a URL that can never be imported gets, with the downloader's reason. */
function refused(error: ImportError): HttpError {
  return new HttpError(400, error.code === "invalid_url" ? "invalid_url" : error.code === "host_not_allowed" ? "host_not_allowed" : "blocked_address", error.message);
}

export class ImportService {
  /** "progress" (ImportProgress): bytes downloaded so far, for event streams. */
  readonly events = new EventEmitter();
  private readonly progress = new Map<string, ImportProgress>();

  constructor(
    readonly library: VideoLibrary,
    readonly ingest: IngestPipeline,
    private readonly queue: JobQueue,
    readonly settings: ImportSettings,
    /** Called when a job was queued here (the worker in this process, if any, looks at once). */
    private readonly queued: () => void = () => {},
  ) {
    this.events.setMaxListeners(0);
  }

  /** Parses and checks a URL as the API must before accepting it: a 400 HttpError otherwise. */
  check(url: string): URL {
    try {
      return checkSourceUrl(url, this.settings);
    } catch (error) {
      if (error instanceof ImportError) throw refused(error);
      throw error;
    }
  }

  /**
   * Checks the URL (400), that ingest can run (503), registers the video (`importing`) and
   * queues its download; resolves with the new row at once.
   */
  async start(url: string, meta: ImportMeta = {}): Promise<VideoRow> {
    const source = this.check(url);
    this.ingest.requireTools();
    const row = await this.library.begin({ id: meta.id, title: meta.title, playback: meta.playback, originalFilename: filenameFor(source, undefined) ?? bareHost(source) }, "importing");
    await this.queue.enqueue("import", row.id, { url: source.href } satisfies ImportPayload);
    this.queued();
    return row;
  }

  /**
   * Starts a failed import over from its source URL (the payload of the video's last `import`
   * job): the video goes back to `importing` and a new job is queued. Undefined when the video
   * is not a failed import (never imported, or not failed): the caller's 409.
   */
  async retry(videoId: string): Promise<VideoRow | undefined> {
    const last = (await this.queue.forVideo(videoId, "import")).at(-1);
    const url = last ? (JSON.parse(last.payload ?? "{}") as Partial<ImportPayload>).url : undefined;
    if (!url) return undefined;
    // The rules may have changed since (IMPORT_ALLOWED_HOSTS): a URL refused now is a 400 again.
    this.check(url);
    this.ingest.requireTools();
    const row = await this.library.retryImport(videoId);
    if (!row) return undefined;
    // The failed job may still be finishing (the video is marked failed before its job settles),
    // and a video has at most one active job of a kind: wait for it to leave.
    for (let tries = 0; (await this.queue.enqueue("import", videoId, { url } satisfies ImportPayload)) === null; tries++) {
      if (tries >= 50) {
        await this.library.markFailed(videoId, "The import could not be queued again: retry it");
        throw new HttpError(409, "import_not_failed", "The previous attempt is still finishing; try again in a moment");
      }
      await Bun.sleep(100);
    }
    this.queued();
    return row;
  }

  /**
   * Downloads `url` for the video `videoId` (a row in `importing`, made by `start`) and hands
   * the bytes to the ingest pipeline. Never throws for the import's own failures: the video is
   * marked `failed` with the reason and nothing is kept. Resolves with the row after `accept`
   * (`processing`), or the failed row, or undefined when the video was deleted meanwhile.
   * Throws `ImportStopped` when `signal` aborted it (a shutdown, a delete): the job decides.
   */
  async runImport(videoId: string, url: string, options: { signal?: AbortSignal } = {}): Promise<VideoRow | undefined> {
    const temp = this.library.storage.tempPath();
    const host = (() => {
      try {
        return new URL(url).host;
      } catch {
        return "the source";
      }
    })();
    try {
      // Not `importing` (a job run again after it finished, the video deleted or retried
      // meanwhile): nothing to download, and nothing here may fail the video.
      const current = await this.library.get(videoId);
      if (!current || current.status !== "importing") return current ?? undefined;
      let downloaded;
      try {
        downloaded = await (await downloader())(url, temp, {
          ...this.settings,
          signal: options.signal,
          onProgress: (p) => this.report(videoId, p),
        });
      } catch (error) {
        if (!(error instanceof ImportError)) throw error;
        if (error.code === "aborted") throw new ImportStopped();
        log.info({ video: videoId, code: error.code, reason: error.message }, "import failed");
        return await this.library.markFailed(videoId, `Import from ${host} failed: ${error.message}`, "importing");
      }
      const row = await this.library.get(videoId);
      if (!row || row.status !== "importing") return undefined; // deleted (or settled) meanwhile
      try {
        // An import has no client waiting for a 415: a refusal keeps the row, failed with the
        // message an upload would have got.
        return await this.ingest.accept(row, temp, { sha256: downloaded.sha256, keepRow: true });
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        return await this.library.get(videoId);
      }
    } catch (error) {
      if (error instanceof ImportStopped) throw error;
      // The video stays `importing`; the job runs again once there may be room.
      if (isDiskFull(error)) throw new DiskFull("to download into", error);
      log.error({ video: videoId, ...errorFields(error) }, "import failed");
      return await this.library.markFailed(videoId, `Import from ${host} failed: ${error instanceof Error ? error.message : String(error)}`, "importing");
    } finally {
      this.progress.delete(videoId);
      await rm(temp, { force: true });
    }
  }

  private report(id: string, progress: DownloadProgress): void {
    const event = { id, ...progress };
    this.progress.set(id, event);
    this.events.emit("progress", event);
    // Other servers' event streams (PostgreSQL; the downloader already sends at most a few a
    // second). A lost one is a missed percentage, nothing more.
    this.library.handle.publish(PROGRESS_TOPIC, JSON.stringify(event)).catch(() => {});
  }

  /**
   * Hears the downloads other processes run (PostgreSQL: a separate worker, another server), so
   * this process's event streams show them too. On SQLite only this process's own are seen.
   */
  async listen(): Promise<void> {
    await this.library.handle.subscribe(PROGRESS_TOPIC, (message) => {
      const event = progressEvent(message);
      if (event) this.events.emit("progress", event);
    });
  }

  /** The latest download progress of a video being imported by this process. */
  progressOf(id: string): ImportProgress | undefined {
    return this.progress.get(id);
  }

}

/** The import was stopped from outside (a shutdown or a delete) before it finished. */
export class ImportStopped extends Error {
  override name = "ImportStopped";
  constructor() {
    super("the import was stopped");
  }
}

