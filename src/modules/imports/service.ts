/**
 * Imports from a URL: `POST /api/videos` with `{"url": ...}` and `bun run ingest https://...`.
 *
 *   start(url) ── check (400) ──▶ begin (row `uploading`) ──▶ 201
 *                                      │ background: runImport(id, url)
 *                                      ▼
 *                       downloadToFile (src/media/import) ──▶ ingest.accept ──▶ processing ──▶ ready
 *                                      │                            │
 *                                      └── failed: "Import from host failed: source answered 404 Not Found",
 *                                          not media: the upload's 415 message; no bytes kept
 *
 * `runImport` is the whole background step (download, then hand over to the ingest pipeline),
 * one function a durable job handler can call with the video id and the URL.
 */
import { EventEmitter } from "node:events";
import { rm } from "node:fs/promises";
import type { Playback, VideoRow } from "../../db/schema.ts";
import { HttpError } from "../../http/errors.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import { errorFields, logger } from "../../lib/log.ts";
import { downloadToFile, filenameFor, type DownloadProgress } from "../../media/import/download.ts";
import { ImportError } from "../../media/import/errors.ts";
import { bareHost, checkSourceUrl, type ImportPolicy } from "../../media/import/policy.ts";
import type { IngestPipeline } from "../ingest/pipeline.ts";
import { importConfig, loadConfig } from "../../config.ts";

const log = logger("import");

export interface ImportSettings extends ImportPolicy {
  /** MAX_UPLOAD_BYTES: an import may be as large as an upload. */
  maxBytes: number;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxRedirects?: number;
}

export interface ImportMeta {
  title?: string;
  playback?: Playback;
}

export interface ImportProgress extends DownloadProgress {
  id: string;
}

interface Job {
  controller: AbortController;
  /** True while downloading: a delete then stops the download and waits for it. */
  downloading: boolean;
  done: Promise<VideoRow | undefined>;
}

/** The 400 a URL that can never be imported gets, with the downloader's reason. */
function refused(error: ImportError): HttpError {
  return new HttpError(400, error.code === "invalid_url" ? "invalid_url" : error.code === "host_not_allowed" ? "host_not_allowed" : "blocked_address", error.message);
}

export class ImportService {
  /** "progress" (ImportProgress): bytes downloaded so far, for event streams. */
  readonly events = new EventEmitter();
  private readonly jobs = new Map<string, Job>();
  private readonly progress = new Map<string, ImportProgress>();

  constructor(
    readonly library: VideoLibrary,
    readonly ingest: IngestPipeline,
    readonly settings: ImportSettings,
  ) {
    this.events.setMaxListeners(0);
    library.onRemove((id) => this.cancel(id));
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
   * Checks the URL (400), that ingest can run (503), registers the video and starts the download
   * in the background; resolves with the new row at once.
   */
  async start(url: string, meta: ImportMeta = {}): Promise<VideoRow> {
    const source = this.check(url);
    this.ingest.requireTools();
    const row = await this.library.begin({ title: meta.title, playback: meta.playback, originalFilename: filenameFor(source, undefined) ?? bareHost(source) });
    this.launch(row.id, source.href);
    return row;
  }

  /** Runs `runImport` as this process's background job for the video (cancelled by a delete). */
  private launch(id: string, url: string): void {
    const controller = new AbortController();
    const job: Job = { controller, downloading: true, done: Promise.resolve(undefined) };
    job.done = this.runImport(id, url, { signal: controller.signal, onDownloaded: () => (job.downloading = false) })
      .catch((error) => {
        log.error({ video: id, ...errorFields(error) }, "import failed unexpectedly");
        return undefined;
      })
      .finally(() => this.jobs.delete(id));
    this.jobs.set(id, job);
  }

  /**
   * Downloads `url` for the video `videoId` (a row in `uploading`, made by `start` or by a job's
   * creator) and hands the bytes to the ingest pipeline. Never throws for the import's own
   * failures: the video is marked `failed` with the reason and nothing is kept. Resolves with
   * the row after `accept` (`processing`), or the failed row, or undefined when the video was
   * deleted (or `signal` aborted) meanwhile.
   */
  async runImport(videoId: string, url: string, options: { signal?: AbortSignal; onDownloaded?: () => void } = {}): Promise<VideoRow | undefined> {
    const temp = this.library.storage.tempPath();
    const host = (() => {
      try {
        return new URL(url).host;
      } catch {
        return "the source";
      }
    })();
    try {
      let downloaded;
      try {
        downloaded = await downloadToFile(url, temp, {
          ...this.settings,
          signal: options.signal,
          onProgress: (p) => this.report(videoId, p),
        });
      } catch (error) {
        if (!(error instanceof ImportError)) throw error;
        if (error.code === "aborted") return undefined;
        log.info({ video: videoId, code: error.code, reason: error.message }, "import failed");
        return await this.library.markFailed(videoId, `Import from ${host} failed: ${error.message}`);
      } finally {
        options.onDownloaded?.();
      }
      const row = await this.library.get(videoId);
      if (!row || row.status !== "uploading") return undefined; // deleted (or settled) meanwhile
      try {
        return await this.ingest.accept(row, temp, { sha256: downloaded.sha256 });
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        // accept() refused the bytes (415, 422, 503) and, as for an upload, removed the row and
        // the file. An import has no client waiting for that answer: the video stays listed as
        // failed with the message an upload would have got.
        await this.library.begin({ id: row.id, title: row.title, originalFilename: row.originalFilename, playback: row.playback });
        return await this.library.markFailed(row.id, error.message);
      }
    } catch (error) {
      log.error({ video: videoId, ...errorFields(error) }, "import failed");
      return (await this.library.get(videoId)) ? await this.library.markFailed(videoId, `Import from ${host} failed: ${error instanceof Error ? error.message : String(error)}`) : undefined;
    } finally {
      this.progress.delete(videoId);
      await rm(temp, { force: true });
    }
  }

  private report(id: string, progress: DownloadProgress): void {
    const event = { id, ...progress };
    this.progress.set(id, event);
    this.events.emit("progress", event);
  }

  /** The latest download progress of a video being imported by this process. */
  progressOf(id: string): ImportProgress | undefined {
    return this.progress.get(id);
  }

  /** Imports this process is running. */
  get running(): string[] {
    return [...this.jobs.keys()];
  }

  /** Resolves when the video's import (if this process runs one) has finished. */
  async settled(id: string): Promise<VideoRow | undefined> {
    return this.jobs.get(id)?.done;
  }

  /** Stops a video's download (it is being deleted) and waits until its file is gone. */
  async cancel(id: string): Promise<void> {
    const job = this.jobs.get(id);
    // After the download, the ingest pipeline owns the bytes (and may itself be deleting the row).
    if (!job?.downloading) return;
    job.controller.abort();
    await job.done;
  }

  /** Stops every download (shutdown). */
  async close(): Promise<void> {
    for (const job of this.jobs.values()) job.controller.abort();
    await Promise.all([...this.jobs.values()].map((j) => j.done));
  }
}

/**
 * The import settings from the environment (IMPORT_*), for a server whose wiring passes none.
 * `maxBytes` is MAX_UPLOAD_BYTES as the caller knows it.
 */
export function importSettingsFromEnv(maxBytes: number, env: Record<string, string | undefined> = process.env): ImportSettings {
  return { ...importConfig(loadConfig(env)), maxBytes };
}
