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
 *
 * A database (or bucket) that cannot answer is a 503 with Retry-After here as on every route,
 * never a 500. An upload whose bytes are all stored but whose hand-over failed that way (its
 * final PATCH got the 503; its client hears from HEAD that it is complete and sends nothing
 * more) is handed over by the primary's retry pass once the database answers again.
 */
import { uploadBytes } from "../../metrics/metrics.ts";
import { errorFields, logger } from "../../lib/log.ts";
import { copyFile, link, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Server, Upload } from "@tus/server";
import { PLAYBACK_POLICIES, type DirectUploadRow, type Playback } from "../../db/schema.ts";
import { HttpError, errorResponse, badRequest, errorBody } from "../../http/errors.ts";
import { isDatabaseUnavailable } from "../../db/unavailable.ts";
import { RETRY_AFTER_S } from "../../storage/error-response.ts";
import { expectedErrorResponse } from "../expected-errors.ts";
import { StorageUnavailable } from "../../storage/object-store.ts";
import type { IngestPipeline } from "../ingest/pipeline.ts";
import { isVideoId, newVideoId } from "../../library/ids.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import type { DirectUploads } from "./direct.ts";
import type { FileLocker } from "./file-locker.ts";
import { newUploadId, videoIdOfUpload } from "./upload-ids.ts";

export const UPLOADS_PATH = "/api/uploads";
export const DEFAULT_UPLOAD_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** Response header naming the video an upload becomes. */
export const VIDEO_ID_HEADER = "Spool-Video-Id";

/** The one tus version spoken (Tus-Resumable, Tus-Version). */
const TUS_VERSION = "1.0.0";
/** The body type of every PATCH (tus 1.0.0: otherwise 415). */
const OFFSET_OCTET_STREAM = "application/offset+octet-stream";
/**
 * Forwarding headers @tus/server 2.4.5 validates on every request (a list such as `https, http`,
 * or `HTTPS`, answered 400) though it reads them only for absolute Locations, which Spool does
 * not make (`relativeLocation`): they are not passed on.
 */
const FORWARDING_HEADERS = ["forwarded", "x-forwarded-proto", "x-forwarded-host"];
/** Beside a completed upload's id: the size it had, kept after its bytes left the store (see `completedSize`). */
const COMPLETED_SUFFIX = ".done";

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

/**
 * What @tus/server expects to be thrown from a hook: a status and the body to send. The errors
 * a handler may throw on purpose answer as on every other route (../expected-errors.ts): an
 * HttpError, and a database or bucket that cannot answer (503 with Retry-After, a warning, not
 * an error). @tus/server sends no headers of a hook's error, so theirs (Retry-After) come back
 * as the third element, for `handle` to add. Anything else is a bug: logged, 500.
 */
async function tusError(error: unknown): Promise<[{ status_code: number; body: string }, Headers?]> {
  const expected = expectedErrorResponse(error);
  if (expected) return [{ status_code: expected.status, body: await expected.text() }, expected.headers];
  logger("uploads").error(errorFields(error), "tus hook failed");
  return [{ status_code: 500, body: JSON.stringify(errorBody("internal_error", "Something went wrong on our side")) }];
}

/** How often the primary retries the hand-over of uploads whose bytes are complete (`retryHandOvers`). */
const HANDOVER_RETRY_MS = RETRY_AFTER_S * 1000;
/**
 * A complete upload whose bytes are younger than this may be in its final PATCH still, between
 * its last byte and its own hand-over (@tus/server lets go of the upload's lock in between):
 * the retry pass leaves it to that request.
 */
const HANDOVER_GRACE_MS = 5_000;

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
  /** Creation requests that used up their direct upload URL (given back if the creation then fails). */
  private readonly consumed = new WeakSet<Request>();
  /** The cross-process locks of uploads and of their hand-overs, made with @tus/server. */
  private locker: Promise<FileLocker> | undefined;
  /** The headers of a hook's error answer (Retry-After), which @tus/server does not send: see `handle`. */
  private readonly hookHeaders = new WeakMap<Request, Headers>();
  /**
   * Videos whose upload is being handed over in this process: a refusal or a failure in the
   * middle removes the video row (IngestPipeline.accept), and that removal must not take the
   * upload's bytes with it; the hand-over's caller removes them once the row is really gone.
   */
  private readonly handingOver = new Set<string>();
  /** The retry pass for complete uploads (`retryHandOvers`), in the primary. */
  private handOverTimer: ReturnType<typeof setInterval> | undefined;
  private retryPass: Promise<number> | undefined;
  /** Uploads whose retried hand-over failed and was logged: logged once, not at every pass. */
  private readonly stalled = new Set<string>();

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
    // Deleting a video that is still uploading also deletes its partial bytes, once its row is
    // gone: a deletion the database refuses leaves the upload resumable.
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

  private fileLocker(): Promise<FileLocker> {
    return (this.locker ??= import("./file-locker.ts").then(({ FileLocker }) => new FileLocker(this.locks)));
  }

  private async makeServer(): Promise<Server> {
    const [{ Server }, { FileStore }, locker] = await Promise.all([import("@tus/server"), import("@tus/file-store"), this.fileLocker()]);
    const options = this.options;
    return new Server({
      path: UPLOADS_PATH,
      datastore: new FileStore({ directory: this.directory, expirationPeriodInMilliseconds: this.expiryMs }),
      // Exclusive across every process sharing DATA_DIR, not just this one (WORKERS > 1).
      locker,
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
          if (direct) {
            await this.directUploads.consume(direct);
            this.consumed.add(req);
          }
          await this.library.begin({
            id: videoIdOfUpload(upload.id)!,
            originalFilename: metadataValue(upload.metadata, "filename", "name") ?? "upload",
            title: direct?.title ?? metadataValue(upload.metadata, "title"),
            playback: direct ? direct.playback : playback,
          });
          this.creating.set(req, upload.id);
        } catch (error) {
          throw await this.hookError(req, error);
        }
        return {};
      },
      onUploadFinish: async (req, upload) => {
        try {
          await this.finishOnce(upload.id, upload.size ?? upload.offset);
        } catch (error) {
          throw await this.hookError(req, error);
        }
        return { headers: { [VIDEO_ID_HEADER]: videoIdOfUpload(upload.id) ?? "" } };
      },
    });
  }

  /** A hook's error for @tus/server to answer, with the headers it drops kept for `handle`. */
  private async hookError(req: Request, error: unknown): Promise<{ status_code: number; body: string }> {
    const [answer, headers] = await tusError(error);
    if (headers) this.hookHeaders.set(req, headers);
    return answer;
  }

  private dataPath(uploadId: string): string {
    return join(this.directory, uploadId);
  }

  /**
   * Hands a completed upload over once, however many requests complete it. @tus/server 2.4.5
   * lets go of the upload's lock before its finish hook, so a final PATCH sent again (a client
   * that lost the first one's answer, or an empty PATCH at the final offset) handed the same
   * bytes over twice: two ingests, and a staged copy left in tmp/ each time. The hand-over
   * holds a lock of its own (across the processes sharing DATA_DIR); one that comes second
   * finds the upload completed and answers as the first did. A completed upload leaves its
   * size behind (`completedSize`), so that its URL still says it is complete.
   */
  private async finishOnce(uploadId: string, size: number): Promise<void> {
    const lock = (await this.fileLocker()).newLock(`${uploadId}${COMPLETED_SUFFIX}`);
    // Nobody is asked to let go: a second hand-over waits for the first (at most the locker's timeout).
    await lock.lock(new AbortController().signal, async () => {});
    try {
      if ((await this.completedSize(uploadId)) !== undefined) return;
      const id = videoIdOfUpload(uploadId);
      if (id) this.handingOver.add(id);
      try {
        await this.finish(uploadId);
      } finally {
        if (id) this.handingOver.delete(id);
      }
      await writeFile(this.dataPath(uploadId) + COMPLETED_SUFFIX, JSON.stringify({ size }));
    } finally {
      await lock.unlock();
    }
  }

  /**
   * The size of an upload that was completed and accepted, for UPLOAD_EXPIRY_MS after: tus
   * 1.0.0 has HEAD answer the offset of a completed upload too, and a client whose final PATCH's
   * answer was lost asks it; a 404 there made tus-js-client upload the whole file again, as a
   * second video. Undefined for any other upload (unknown, refused, still uploading).
   */
  private async completedSize(uploadId: string): Promise<number | undefined> {
    try {
      const { size } = JSON.parse(await readFile(this.dataPath(uploadId) + COMPLETED_SUFFIX, "utf8")) as { size?: unknown };
      return typeof size === "number" ? size : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * A PATCH that ran past the declared length stored every byte up to it before @tus/server
   * refused the rest (413) and skipped its finish hook: the upload is complete, and a client
   * resuming it hears so and sends nothing more. So it is handed over here, as the hook would
   * have; the request itself still gets its 413.
   */
  private async finishIfComplete(uploadId: string): Promise<void> {
    const complete = await this.storedWhole(uploadId);
    if (!complete) return;
    try {
      await this.finishOnce(uploadId, complete.declared);
    } catch (error) {
      // Refused (415/422: the video is gone, as after a final PATCH) or failed: logged, not answered.
      if (!(error instanceof HttpError)) logger("uploads").error({ video: videoIdOfUpload(uploadId), ...errorFields(error) }, "a completed upload could not be handed over");
    }
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
    for (const { uploadId, id, declared } of await this.completeUploads()) {
      if ((await this.library.get(id))?.status !== "uploading") continue;
      try {
        await this.finishOnce(uploadId, declared);
        resumed++;
      } catch (error) {
        // A refusal ends the upload as the final PATCH's would have. Anything else (a full disk,
        // the database) leaves it for the next start, and must not stop this one.
        if (error instanceof HttpError) logger("uploads").warn({ video: id, code: error.code, reason: error.message }, "a completed upload was refused at start-up");
        else logger("uploads").error({ video: id, ...errorFields(error) }, "a completed upload could not be handed over; it is retried shortly");
      }
      if ((await this.library.get(id))?.status !== "uploading") await this.discardUpload(uploadId);
    }
    return resumed;
  }

  /**
   * The uploads in the store whose every byte is stored (a video's, with a declared length), those
   * last written at least `minAgeMs` before `now`.
   */
  private async completeUploads(minAgeMs = 0, now = Date.now()): Promise<{ uploadId: string; id: string; declared: number }[]> {
    const complete: { uploadId: string; id: string; declared: number }[] = [];
    for (const uploadId of await this.ids()) {
      const id = videoIdOfUpload(uploadId);
      const whole = id ? await this.storedWhole(uploadId) : undefined;
      if (!id || !whole || whole.mtimeMs + minAgeMs > now) continue;
      complete.push({ uploadId, id, declared: whole.declared });
    }
    return complete;
  }

  /** The upload's declared length and its bytes' mtime when every declared byte is stored; else undefined. */
  private async storedWhole(uploadId: string): Promise<{ declared: number; mtimeMs: number } | undefined> {
    let declared: unknown;
    try {
      declared = (JSON.parse(await readFile(`${this.dataPath(uploadId)}.json`, "utf8")) as { size?: unknown }).size;
    } catch {
      return undefined;
    }
    const stored = await stat(this.dataPath(uploadId)).catch(() => undefined);
    return typeof declared === "number" && stored?.size === declared ? { declared, mtimeMs: stored.mtimeMs } : undefined;
  }

  /**
   * Uploads whose bytes are complete but whose video is still `uploading`: their final PATCH's
   * hand-over failed (the database or the bucket did not answer: that PATCH got 503), and their
   * client, told by HEAD that the upload is complete, sends nothing more. The primary hands them
   * over every HANDOVER_RETRY_MS (`startSweeper`), as `resumeCompleted` does at start-up and
   * under the same lock as a PATCH's hand-over (`finishOnce`), so never twice: a refusal (415,
   * 422) ends the upload as the final PATCH would have; a database still down leaves it for the
   * next pass, logged once. Uploads written to in the last HANDOVER_GRACE_MS are left to their
   * own final PATCH. One pass at a time; returns how many were handed over.
   */
  retryHandOvers(now = Date.now()): Promise<number> {
    if (this.retryPass) return this.retryPass;
    const pass = (this.retryPass = this.retryPassOnce(now).finally(() => {
      if (this.retryPass === pass) this.retryPass = undefined;
    }));
    return pass;
  }

  private async retryPassOnce(now: number): Promise<number> {
    // Without ffmpeg every hand-over would be refused (503) and the upload dropped with it.
    if (!this.ingest.available) return 0;
    const log = logger("uploads");
    let handed = 0;
    const seen = new Set<string>();
    for (const { uploadId, id, declared } of await this.completeUploads(HANDOVER_GRACE_MS, now)) {
      seen.add(uploadId);
      try {
        // Not a video being uploaded (any more): the expiry sweep removes what is left.
        if ((await this.library.get(id))?.status !== "uploading") continue;
        try {
          await this.finishOnce(uploadId, declared);
          handed++;
          log.info({ video: id }, "a completed upload whose hand-over had failed was handed to processing");
        } catch (error) {
          if (!(error instanceof HttpError)) throw error;
          log.warn({ video: id, code: error.code, reason: error.message }, "a completed upload whose hand-over had failed was refused");
        }
        this.stalled.delete(uploadId);
        if ((await this.library.get(id))?.status !== "uploading") await this.discardUpload(uploadId);
      } catch (error) {
        // The database or the bucket still down (or a full disk): the next pass tries again.
        if (this.stalled.has(uploadId)) continue;
        this.stalled.add(uploadId);
        const fields = { video: id, ...errorFields(error) };
        const message = "a completed upload could not be handed over; retrying";
        if (isDatabaseUnavailable(error) || error instanceof StorageUnavailable) log.warn(fields, message);
        else log.error(fields, message);
      }
    }
    for (const uploadId of this.stalled) if (!seen.has(uploadId)) this.stalled.delete(uploadId);
    return handed;
  }

  /** Removes the bytes and info file of video `videoId`'s upload, if any, and what says it completed (idempotent). */
  async discard(videoId: string): Promise<void> {
    // Its hand-over's own refusal or failure: the hand-over's caller decides (see `handingOver`).
    if (!isVideoId(videoId) || this.handingOver.has(videoId)) return;
    for (const uploadId of await this.ids()) if (videoIdOfUpload(uploadId) === videoId) await this.discardUpload(uploadId);
    for (const uploadId of await this.completedIds()) if (videoIdOfUpload(uploadId) === videoId) await rm(this.dataPath(uploadId) + COMPLETED_SUFFIX, { force: true });
  }

  /** Ids of the completed uploads whose size is kept. */
  private async completedIds(): Promise<string[]> {
    const names = await readdir(this.directory).catch(() => [] as string[]);
    return names.filter((n) => n.endsWith(COMPLETED_SUFFIX)).map((n) => n.slice(0, -COMPLETED_SUFFIX.length));
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
    // What completed uploads left, once a client could no longer be resuming them.
    for (const uploadId of await this.completedIds()) {
      const path = this.dataPath(uploadId) + COMPLETED_SUFFIX;
      const info = await stat(path).catch(() => undefined);
      if (info && info.mtimeMs + this.expiryMs <= now) await rm(path, { force: true });
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

  /** Runs `sweepExpired` periodically, and `retryHandOvers` every HANDOVER_RETRY_MS (primary process only). */
  startSweeper(intervalMs = Math.min(Math.max(Math.floor(this.expiryMs / 4), 1000), 15 * 60 * 1000)): void {
    this.stopSweeper();
    this.sweeper = setInterval(() => {
      this.sweepExpired().catch((error) => logger("uploads").error(errorFields(error), "sweep failed"));
    }, intervalMs);
    this.sweeper.unref?.();
    this.handOverTimer = setInterval(() => {
      this.retryHandOvers().catch((error) => logger("uploads").error(errorFields(error), "hand-over retry failed"));
    }, HANDOVER_RETRY_MS);
    this.handOverTimer.unref?.();
  }

  stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.handOverTimer) clearInterval(this.handOverTimer);
    this.sweeper = undefined;
    this.handOverTimer = undefined;
  }

  /**
   * A creation request through a direct upload URL (`POST /api/uploads/direct/<secret>`, and
   * its CORS preflight): answered as a tus creation at /api/uploads, for that upload only.
   */
  async handleDirect(request: Request, secret: string): Promise<Response> {
    const row = request.method === "OPTIONS" ? undefined : await this.directUploads.usable(secret);
    return this.handle(request, { url: new URL(UPLOADS_PATH, request.url).href, ...(row ? { direct: row } : {}) });
  }

  /**
   * The request @tus/server answers: the client's, at `url`, without the forwarding headers it
   * would refuse, and with the client's signal (a hang-up is seen as one: see `handle`).
   */
  private forTus(request: Request, url: string): Request {
    const headers = new Headers(request.headers);
    for (const name of FORWARDING_HEADERS) headers.delete(name);
    return new Request(url, { method: request.method, headers, body: request.body, duplex: "half", signal: request.signal } as RequestInit);
  }

  /** Answers one tus request; errors get Spool's JSON shape, tus headers are kept. */
  async handle(original: Request, { url = original.url, direct }: { url?: string; direct?: DirectUploadRow } = {}): Promise<Response> {
    const request = this.forTus(original, url);
    if (direct) this.direct.set(request, direct);
    let response = await (await this.tus()).handleWeb(request);
    // A client that hung up mid-PATCH makes @tus/server answer 500 (its body stream failed); the
    // bytes that arrived are kept and the upload resumes. Nobody reads this answer: log it as
    // what it is (nginx's 499, "client closed request"), not as a server error.
    if (response.status === 500 && original.signal.aborted) response = errorResponse(499, "client_closed_request", "The client closed the connection during the upload");
    const headers = new Headers(response.headers);
    const lastSegment = (path: string) => path.slice(path.lastIndexOf("/") + 1);
    const uploadId = request.method === "POST" ? this.creating.get(request) : lastSegment(new URL(request.url).pathname);
    // Bytes stored by this request (an append, or a creation-with-upload).
    if ((request.method === "PATCH" && response.status === 204) || (request.method === "POST" && response.status === 201)) {
      const stored = Number(headers.get("upload-offset") ?? 0) - Number(request.method === "PATCH" ? (request.headers.get("upload-offset") ?? 0) : 0);
      if (stored > 0) uploadBytes.inc({ via: "tus" }, stored);
    }
    if (request.method === "PATCH" && response.status === 413 && uploadId && !original.signal.aborted) await this.finishIfComplete(uploadId);
    // A completed upload's URL: its bytes have left the store, and it still says it is complete.
    if ((request.method === "HEAD" || request.method === "PATCH") && response.status === 404 && uploadId) {
      const size = await this.completedSize(uploadId);
      if (size !== undefined) return completedAnswer(request, headers, size, videoIdOfUpload(uploadId) ?? "");
    }
    if (request.method === "POST" && response.status === 201) {
      const id = videoIdOfUpload(lastSegment(headers.get("location") ?? ""));
      if (id) headers.set(VIDEO_ID_HEADER, id);
    }
    // What is tidied up after tus answered needs the database: while it cannot answer, tus's answer
    // still goes out (with its tus and CORS headers), and what is left is finished later (a
    // complete upload by `retryHandOvers`, the rest by the sweeps).
    const tidy = async (work: () => Promise<void>) => {
      try {
        await work();
      } catch (error) {
        if (!isDatabaseUnavailable(error)) throw error;
        logger("db").warn(errorFields(error), "database unavailable");
      }
    };
    // A hook that met the outage itself (503 with Retry-After): the upload stays as it is, and the
    // answer does not wait for the database a second time.
    const outage = response.status === 503 && this.hookHeaders.has(request);
    if ((request.method === "PATCH" || request.method === "POST") && uploadId && !outage) await tidy(async () => {
      const id = videoIdOfUpload(uploadId);
      if (id) {
        const row = await this.library.get(id);
        if (request.method === "POST" && response.status >= 400) {
          // A failed creation (a creation-with-upload body over its length, say): its client
          // got no upload URL, so nothing can resume it. Its video and bytes go at once, and a
          // direct upload URL it used up works again: nothing was created (its retry may use it).
          if (row?.status === "uploading") await this.library.remove(id);
          await this.discardUpload(uploadId);
          if (direct && this.consumed.has(request)) await this.directUploads.restore(direct);
        } else if (row?.status !== "uploading") {
          // An upload that was completed (accepted or refused) leaves the tus store.
          await this.discardUpload(uploadId);
        }
      }
    });
    if (request.method === "DELETE" && response.status === 204) await tidy(async () => {
      // Termination: the video that upload would have become goes too.
      const id = videoIdOfUpload(lastSegment(new URL(request.url).pathname));
      const row = id ? await this.library.get(id) : undefined;
      if (id && row?.status === "uploading") await this.library.remove(id);
    });
    if (response.status < 400) return new Response(response.body, { status: response.status, headers });

    const text = (await response.text()).trim();
    const status = errorStatus(request, response.status);
    // A hook's error answer's own headers (a 503's Retry-After), which @tus/server does not send.
    for (const [name, value] of this.hookHeaders.get(request) ?? []) headers.set(name, value);
    if (status === 412) headers.set("tus-version", TUS_VERSION);
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
    headers.set("x-content-type-options", "nosniff");
    headers.delete("content-length");
    return new Response(request.method === "HEAD" ? null : body, { status, headers });
  }
}

/**
 * The status tus 1.0.0 asks for where @tus/server 2.4.5 answers otherwise: a Tus-Resumable it
 * does not speak is 412 (with Tus-Version, set by the caller), not 400; a PATCH without
 * `Content-Type: application/offset+octet-stream` is 415, not 400 or 403; a missing
 * Upload-Offset (403 from @tus/server) is a malformed request like any other, 400.
 */
function errorStatus(request: Request, status: number): number {
  const version = request.headers.get("tus-resumable");
  if (status === 400 && request.method !== "OPTIONS" && version !== null && version !== TUS_VERSION) return 412;
  if ((status === 400 || status === 403) && request.method === "PATCH" && request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase() !== OFFSET_OCTET_STREAM) return 415;
  return status === 403 ? 400 : status;
}

/** HEAD or PATCH on a completed upload (see `completedSize`): its final offset, as a tus server says it. */
function completedAnswer(request: Request, tusHeaders: Headers, size: number, videoId: string): Response {
  const headers = new Headers(tusHeaders);
  for (const name of ["content-length", "content-type"]) headers.delete(name);
  headers.set("tus-resumable", TUS_VERSION);
  headers.set("upload-offset", String(size));
  headers.set(VIDEO_ID_HEADER, videoId);
  if (request.method === "HEAD") {
    headers.set("upload-length", String(size));
    headers.set("cache-control", "no-store");
    return new Response(null, { status: 200, headers });
  }
  // A PATCH at the final offset (an empty one, or one resent) changes nothing; anywhere else it conflicts.
  if (request.headers.get("upload-offset") === String(size)) return new Response(null, { status: 204, headers });
  headers.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify(errorBody("offset_conflict", `This upload is complete at offset ${size}`)), { status: 409, headers });
}
