/**
 * Resumable uploads: the tus 1.0 protocol (core, creation, creation-with-upload,
 * creation-defer-length, termination, expiration) under /api/uploads, served by @tus/server's
 * web-standard `handleWeb(request)` over @tus/file-store.
 *
 * Creating an upload needs the API key (or a one-time direct upload URL, see direct.ts) and
 * registers the video in state `uploading`; `Spool-Video-Id` names it. The upload URL itself
 * is a capability, `<video id>.<secret>` (upload-ids.ts): it alone lets its holder resume or
 * cancel, and the video id, which the library lists, does not reveal it. The final PATCH hands
 * the file to the same ingest pipeline as a multipart upload, still inside that request:
 * non-media is refused with 415, media over the ingest limits with 422, and nothing kept.
 * Each request body is bounded by @tus/server to what the upload declared (at most
 * MAX_UPLOAD_BYTES), chunked or not. A creation request that fails (a creation-with-upload body
 * over its length: 413) leaves neither files nor a video: nobody holds its upload URL.
 *
 * Partial uploads live in DATA_DIR/uploads (not tmp/, which start-up clears), so they survive a
 * restart too. An upload not completed UPLOAD_EXPIRY_MS after its creation expires (tus
 * `Upload-Expires`; 410 after that) and a periodic sweep deletes its bytes and its video row.
 */
import { uploadBytes } from "../../metrics/metrics.ts";
import { errorFields, logger } from "../../lib/log.ts";
import { copyFile, link, mkdir, readFile, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Server, Upload } from "@tus/server";
import { PLAYBACK_POLICIES, type DirectUploadRow, type Playback } from "../../db/schema.ts";
import { HttpError, errorResponse, badRequest, errorBody } from "../../http/errors.ts";
import type { IngestPipeline } from "../ingest/pipeline.ts";
import { isVideoId, newVideoId } from "../../library/ids.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import type { DirectUploads } from "./direct.ts";
import { newUploadId, videoIdOfUpload } from "./upload-ids.ts";

export const UPLOADS_PATH = "/api/uploads";
export const DEFAULT_UPLOAD_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** Response header naming the video an upload becomes. */
export const VIDEO_ID_HEADER = "Spool-Video-Id";

/** tus errors are plain text; Spool's are JSON. Codes for the statuses tus answers with. */
const TUS_CODES: Record<number, string> = {
  400: "bad_request",
  404: "not_found",
  409: "offset_conflict",
  410: "upload_expired",
  412: "tus_version_required",
  413: "payload_too_large",
  415: "unsupported_media_type",
  500: "internal_error",
  501: "not_implemented",
  503: "ingest_unavailable",
};

/** What @tus/server expects to be thrown from a hook: a status and the body to send. */
function tusError(error: unknown): { status_code: number; body: string } {
  if (error instanceof HttpError) return { status_code: error.status, body: JSON.stringify(errorBody(error.code, error.message)) };
  logger("uploads").error(errorFields(error), "tus hook failed");
  return { status_code: 500, body: JSON.stringify(errorBody("internal_error", "Something went wrong on our side")) };
}

function metadataValue(metadata: Upload["metadata"], ...keys: string[]): string | undefined {
  for (const key of keys) {
    const value = metadata?.[key];
    if (typeof value === "string" && value.trim()) return value.trim();
  }
  return undefined;
}

export interface ResumableUploadOptions {
  dataDir: string;
  maxUploadBytes: number;
  expiryMs?: number;
  /** CORS_ORIGINS: ["*"], a list, or [] for none (tus answers CORS itself). */
  corsOrigins?: readonly string[];
}

/** @tus/server's `allowedOrigins` for a CORS_ORIGINS list (undefined lets it answer `*`). */
function tusOrigins(allowed: readonly string[]): ((origin: string) => boolean) | undefined {
  if (allowed.includes("*")) return undefined;
  return (origin) => allowed.includes(origin);
}

function playbackOf(metadata: Upload["metadata"]): Playback | undefined {
  const value = metadataValue(metadata, "playback");
  if (value === undefined) return undefined;
  if (!(PLAYBACK_POLICIES as readonly string[]).includes(value)) throw badRequest(`Upload-Metadata playback: must be ${PLAYBACK_POLICIES.join(" or ")}`);
  return value as Playback;
}

/** Six times the file locker's stale limit (10 s): a lock this old has no live holder. */
const ABANDONED_LOCK_MS = 60_000;

export class ResumableUploads {
  readonly directory: string;
  /** The cross-process upload locks (./file-locker.ts): a directory `<upload id>.lock` each. */
  private readonly locks: string;
  readonly expiryMs: number;
  private readonly options: ResumableUploadOptions;
  /** @tus/server, made on the first tus request (see `tus()`). */
  private server: Promise<Server> | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  /** Creation requests that came through a direct upload URL (never a client-settable header). */
  private readonly direct = new WeakMap<Request, DirectUploadRow>();
  /** The upload each creation request registered a video for, answered or not (a failed one has no Location). */
  private readonly creating = new WeakMap<Request, string>();

  constructor(
    private readonly library: VideoLibrary,
    private readonly ingest: IngestPipeline,
    readonly directUploads: DirectUploads,
    options: ResumableUploadOptions,
  ) {
    this.directory = join(options.dataDir, "uploads");
    this.locks = join(options.dataDir, "locks", "uploads");
    this.expiryMs = options.expiryMs ?? DEFAULT_UPLOAD_EXPIRY_MS;
    this.options = options;
    // Deleting a video that is still uploading also deletes its partial bytes.
    library.onRemove((id) => this.discard(id));
  }

  /**
   * @tus/server, @tus/file-store and the file locker (with proper-lockfile and their helpers,
   * about 40 modules) are loaded on the first tus request, once: a serving process that never
   * takes an upload does not hold them (issue 15, the serving process's memory).
   */
  private tus(): Promise<Server> {
    return (this.server ??= this.makeServer());
  }

  private async makeServer(): Promise<Server> {
    const [{ Server }, { FileStore }, { FileLocker }] = await Promise.all([import("@tus/server"), import("@tus/file-store"), import("./file-locker.ts")]);
    const options = this.options;
    return new Server({
      path: UPLOADS_PATH,
      datastore: new FileStore({ directory: this.directory, expirationPeriodInMilliseconds: this.expiryMs }),
      // Exclusive across every process sharing DATA_DIR, not just this one (WORKERS > 1).
      locker: new FileLocker(this.locks),
      maxSize: options.maxUploadBytes,
      relativeLocation: true,
      exposedHeaders: [VIDEO_ID_HEADER, "Upload-Expires"],
      allowedOrigins: tusOrigins(options.corsOrigins ?? ["*"]),
      namingFunction: (req) => newUploadId(this.direct.get(req)?.videoId ?? newVideoId()),
      onUploadCreate: async (req, upload) => {
        try {
          this.ingest.requireTools();
          const direct = this.direct.get(req);
          const playback = playbackOf(upload.metadata);
          // A direct upload's title and policy were fixed by the key holder who issued it.
          if (direct) await this.directUploads.consume(direct);
          await this.library.begin({
            id: videoIdOfUpload(upload.id)!,
            originalFilename: metadataValue(upload.metadata, "filename", "name") ?? "upload",
            title: direct?.title ?? metadataValue(upload.metadata, "title"),
            playback: direct ? direct.playback : playback,
          });
          this.creating.set(req, upload.id);
        } catch (error) {
          throw tusError(error);
        }
        return {};
      },
      onUploadFinish: async (_req, upload) => {
        try {
          await this.finish(upload.id);
        } catch (error) {
          throw tusError(error);
        }
        return { headers: { [VIDEO_ID_HEADER]: videoIdOfUpload(upload.id) ?? "" } };
      },
    });
  }

  private dataPath(uploadId: string): string {
    return join(this.directory, uploadId);
  }

  /**
   * The last byte arrived: the bytes go to the ingest pipeline. They are handed over as a hard
   * link (no copy), because @tus/server still reads the upload after this hook; `handle`
   * removes the tus files once the response is made.
   */
  private async finish(uploadId: string): Promise<void> {
    const id = videoIdOfUpload(uploadId);
    const row = id ? await this.library.get(id) : undefined;
    if (!row || row.status !== "uploading") throw new HttpError(410, "upload_expired", `This upload no longer belongs to a video being uploaded`);
    const staged = this.library.storage.tempPath();
    try {
      await link(this.dataPath(uploadId), staged);
    } catch {
      await copyFile(this.dataPath(uploadId), staged);
    }
    await this.ingest.accept(row, staged);
  }

  /**
   * Uploads whose last byte was stored but whose hand-over to ingest a crash cut short (the
   * video still `uploading`): a client asking for the offset hears that the upload is complete
   * and sends nothing more, so nothing would ever finish them. At start-up they are handed over
   * as the final PATCH would have (a refusal ends them as it would have: 415 or 422 leaves no
   * video). Without ffmpeg they are left for a later start. Returns how many were handed over.
   */
  async resumeCompleted(): Promise<number> {
    // Without ffmpeg every hand-over would be refused (503) and the upload dropped with it.
    if (!this.ingest.available) return 0;
    let resumed = 0;
    for (const uploadId of await this.ids()) {
      const id = videoIdOfUpload(uploadId);
      if (!id) continue;
      let declared: number | undefined;
      try {
        declared = (JSON.parse(await readFile(`${this.dataPath(uploadId)}.json`, "utf8")) as { size?: number }).size;
      } catch {
        continue;
      }
      const stored = (await stat(this.dataPath(uploadId)).catch(() => undefined))?.size;
      if (declared === undefined || stored !== declared || (await this.library.get(id))?.status !== "uploading") continue;
      try {
        await this.finish(uploadId);
        resumed++;
      } catch (error) {
        // A refusal ends the upload as the final PATCH's would have. Anything else (a full disk,
        // the database) leaves it for the next start, and must not stop this one.
        if (error instanceof HttpError) logger("uploads").warn({ video: id, code: error.code, reason: error.message }, "a completed upload was refused at start-up");
        else logger("uploads").error({ video: id, ...errorFields(error) }, "a completed upload could not be handed over; the next start tries again");
      }
      if ((await this.library.get(id))?.status !== "uploading") await this.discardUpload(uploadId);
    }
    return resumed;
  }

  /** Removes the bytes and info file of video `videoId`'s upload, if any (idempotent). */
  async discard(videoId: string): Promise<void> {
    if (!isVideoId(videoId)) return;
    for (const uploadId of await this.ids()) if (videoIdOfUpload(uploadId) === videoId) await this.discardUpload(uploadId);
  }

  private async discardUpload(uploadId: string): Promise<void> {
    await rm(this.dataPath(uploadId), { force: true });
    await rm(`${this.dataPath(uploadId)}.json`, { force: true });
  }

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
  }

  /** Ids of the videos whose uploads are in the store. */
  async videoIds(): Promise<string[]> {
    return (await this.ids()).map(videoIdOfUpload).filter((id): id is string => id !== null);
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

  /**
   * Deletes uploads past their expiry (and stray files whose video is gone), with the
   * `uploading` video rows they created. Returns how many uploads were removed.
   */
  async sweepExpired(now = Date.now()): Promise<number> {
    let removed = 0;
    for (const uploadId of await this.ids()) {
      let created = NaN;
      try {
        const info = JSON.parse(await readFile(`${this.dataPath(uploadId)}.json`, "utf8")) as { creation_date?: string };
        created = Date.parse(info.creation_date ?? "");
      } catch {
        // unreadable info file: judge by the data file's age
      }
      if (!Number.isFinite(created)) created = (await stat(this.dataPath(uploadId)).catch(() => undefined))?.mtimeMs ?? 0;
      const id = videoIdOfUpload(uploadId);
      const row = id ? await this.library.get(id) : undefined;
      const orphan = !row || row.status !== "uploading";
      if (!orphan && created + this.expiryMs > now) continue;
      await this.discardUpload(uploadId);
      if (id && row?.status === "uploading") await this.library.remove(id);
      removed++;
    }
    await this.directUploads.sweep();
    await this.sweepLocks(now);
    return removed;
  }

  /**
   * Removes the locks of uploads that are gone, once nobody has refreshed them for
   * ABANDONED_LOCK_MS. A holder refreshes its lock every few seconds (./file-locker.ts), so these
   * are the locks of processes killed mid-PATCH: without this, one directory per such upload,
   * named with the upload's secret, stayed in DATA_DIR for good (a lock is otherwise removed only
   * by the next request for the same upload, which never comes once the upload has expired).
   */
  private async sweepLocks(now = Date.now()): Promise<void> {
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

  /** Runs `sweepExpired` periodically (primary process only). */
  startSweeper(intervalMs = Math.min(Math.max(Math.floor(this.expiryMs / 4), 1000), 15 * 60 * 1000)): void {
    this.stopSweeper();
    this.sweeper = setInterval(() => {
      this.sweepExpired().catch((error) => logger("uploads").error(errorFields(error), "sweep failed"));
    }, intervalMs);
    this.sweeper.unref?.();
  }

  stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /**
   * A creation request through a direct upload URL (`POST /api/uploads/direct/<secret>`, and
   * its CORS preflight): answered as a tus creation at /api/uploads, for that upload only.
   */
  async handleDirect(request: Request, secret: string): Promise<Response> {
    const row = request.method === "OPTIONS" ? undefined : await this.directUploads.usable(secret);
    const inner = new Request(new URL(UPLOADS_PATH, request.url), { method: request.method, headers: request.headers, body: request.body, duplex: "half" } as RequestInit);
    if (row) this.direct.set(inner, row);
    return this.handle(inner);
  }

  /** Answers one tus request; errors get Spool's JSON shape, tus headers are kept. */
  async handle(request: Request): Promise<Response> {
    let response = await (await this.tus()).handleWeb(request);
    // A client that hung up mid-PATCH makes @tus/server answer 500 (its body stream failed); the
    // bytes that arrived are kept and the upload resumes. Nobody reads this answer: log it as
    // what it is (nginx's 499, "client closed request"), not as a server error.
    if (response.status === 500 && request.signal.aborted) response = errorResponse(499, "client_closed_request", "The client closed the connection during the upload");
    const headers = new Headers(response.headers);
    const lastSegment = (path: string) => path.slice(path.lastIndexOf("/") + 1);
    // Bytes stored by this request (an append, or a creation-with-upload).
    if ((request.method === "PATCH" && response.status === 204) || (request.method === "POST" && response.status === 201)) {
      const stored = Number(headers.get("upload-offset") ?? 0) - Number(request.method === "PATCH" ? (request.headers.get("upload-offset") ?? 0) : 0);
      if (stored > 0) uploadBytes.inc({ via: "tus" }, stored);
    }
    if (request.method === "POST" && response.status === 201) {
      const id = videoIdOfUpload(lastSegment(headers.get("location") ?? ""));
      if (id) headers.set(VIDEO_ID_HEADER, id);
    }
    if (request.method === "PATCH" || request.method === "POST") {
      const uploadId = request.method === "POST" ? this.creating.get(request) : lastSegment(new URL(request.url).pathname);
      const id = uploadId ? videoIdOfUpload(uploadId) : null;
      if (uploadId && id) {
        const row = await this.library.get(id);
        if (request.method === "POST" && response.status >= 400) {
          // A failed creation (a creation-with-upload body over its length, say): its client
          // got no upload URL, so nothing can resume it. Its video and bytes go at once.
          if (row?.status === "uploading") await this.library.remove(id);
          await this.discardUpload(uploadId);
        } else if (row?.status !== "uploading") {
          // An upload that was completed (accepted or refused) leaves the tus store.
          await this.discardUpload(uploadId);
        }
      }
    }
    if (request.method === "DELETE" && response.status === 204) {
      // Termination: the video that upload would have become goes too.
      const id = videoIdOfUpload(lastSegment(new URL(request.url).pathname));
      const row = id ? await this.library.get(id) : undefined;
      if (id && row?.status === "uploading") await this.library.remove(id);
    }
    if (response.status < 400) return new Response(response.body, { status: response.status, headers });

    const text = (await response.text()).trim();
    // tus-node-server answers a missing Upload-Offset or Content-Type with 403; it is a
    // malformed request like any other, and Spool says so with 400.
    const status = response.status === 403 ? 400 : response.status;
    let body: string;
    try {
      const parsed = JSON.parse(text) as { error?: { code?: unknown } };
      if (typeof parsed.error?.code !== "string") throw new Error("not ours");
      body = text;
    } catch {
      body = JSON.stringify(errorBody(TUS_CODES[status] ?? "upload_error", text || `Upload request failed with status ${status}`));
    }
    headers.set("content-type", "application/json; charset=utf-8");
    headers.set("cache-control", "no-store");
    headers.delete("content-length");
    return new Response(request.method === "HEAD" ? null : body, { status, headers });
  }
}
