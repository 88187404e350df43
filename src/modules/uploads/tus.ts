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
 * over its length: 413) leaves neither files nor a video: nobody holds its upload URL. Except
 * through a direct upload URL, where a repeat of the creation learns it: once its upload is made
 * the creation has settled (direct.ts), and whatever its body does, the upload stays.
 *
 * Partial uploads live in DATA_DIR/uploads (not tmp/, which start-up clears), so they survive a
 * restart too. An upload not completed UPLOAD_EXPIRY_MS after its creation expires (tus
 * `Upload-Expires`; 410 after that) and a periodic sweep deletes its bytes and its video row.
 *
 * A database (or bucket) that cannot answer is a 503 with Retry-After here as on every route,
 * never a 500. An upload whose bytes are all stored but whose hand-over failed that way (its
 * final PATCH got the 503; its client hears from HEAD that it is complete and sends nothing
 * more) is handed over by the primary's retry pass once the database answers again.
 *
 * This module wires @tus/server and answers its requests; the uploads directory's layout is
 * upload-files.ts, the hand-over of completed uploads to ingest upload-hand-over.ts, and the
 * periodic sweeps (expiry, hand-over retries) upload-sweeps.ts.
 */
import { uploadBytes } from "../../metrics/metrics.ts";
import { errorFields, logger } from "../../lib/log.ts";
import type { Server, Upload } from "@tus/server";
import { PLAYBACK_POLICIES, type DirectUploadRow, type Playback } from "../../db/schema.ts";
import { HttpError, errorResponse, badRequest, errorBody } from "../../http/errors.ts";
import { corsHeaders } from "../../http/cors.ts";
import { absoluteUrl } from "../../http/path.ts";
import { isDiskFull } from "../../lib/disk-full.ts";
import { isDatabaseUnavailable } from "../../db/unavailable.ts";
import { expectedErrorResponse } from "../expected-errors.ts";
import type { IngestPipeline } from "../ingest/pipeline.ts";
import { isVideoId, newVideoId } from "../../library/ids.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import { directUploadCreating, directUploadUsed, type DirectUploads } from "./direct.ts";
import type { FileLocker } from "./file-locker.ts";
import { UploadFiles } from "./upload-files.ts";
import { UploadHandOver } from "./upload-hand-over.ts";
import { UploadSweeps } from "./upload-sweeps.ts";
import { directUploadId, newUploadId, videoIdOfUpload } from "./upload-ids.ts";

export const UPLOADS_PATH = "/api/uploads";
export const DEFAULT_UPLOAD_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** Response header naming the video an upload becomes. */
export const VIDEO_ID_HEADER = "Spool-Video-Id";

/** Headers a page may read on tus answers besides @tus/server's own list: Spool's, and the Retry-After of a 423, 429 or 503. */
const SPOOL_TUS_HEADERS = [VIDEO_ID_HEADER, "Upload-Expires", "Retry-After"];
/**
 * What a page may read from what Spool answers on a tus route before @tus/server does (401,
 * 403, 410, 423, 429: src/modules/cors/plugin.ts): the response headers @tus/server exposes on
 * its own answers (its list in @tus/utils 0.x also names request headers, which expose nothing),
 * and Spool's.
 */
export const TUS_EXPOSED_HEADERS = ["Location", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Upload-Offset", "Upload-Length", "Upload-Defer-Length", "Upload-Metadata", "Upload-Concat", ...SPOOL_TUS_HEADERS].join(", ");

/** How long a repeated direct creation waits for the one it repeats, in flight in this process. */
const IN_FLIGHT_WAIT_MS = 10_000;

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
  507: "insufficient_storage",
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

/** Adds Origin to `headers`' Vary, once. */
function varyOnOrigin(headers: Headers): void {
  const vary = headers.get("vary");
  if (vary === null) headers.set("vary", "Origin");
  else if (!vary.split(",").some((v) => ["origin", "*"].includes(v.trim().toLowerCase()))) headers.set("vary", `${vary}, Origin`);
}

function playbackOf(metadata: Upload["metadata"]): Playback | undefined {
  const value = metadataValue(metadata, "playback");
  if (value === undefined) return undefined;
  if (!(PLAYBACK_POLICIES as readonly string[]).includes(value)) throw badRequest(`Upload-Metadata playback: must be ${PLAYBACK_POLICIES.join(" or ")}`);
  return value as Playback;
}

/** A creation through a direct upload URL: the URL's row, and the upload it makes (`directUploadId`). */
interface DirectCreation {
  row: DirectUploadRow;
  uploadId: string;
  /** Called once the creation has settled (made its upload, for good). */
  onSettled?: () => void;
}

export class ResumableUploads {
  readonly directory: string;
  readonly expiryMs: number;
  private readonly options: ResumableUploadOptions;
  /** The uploads directory (bytes, info files, what completed uploads leave) and the upload locks. */
  private readonly files: UploadFiles;
  private readonly handOver: UploadHandOver;
  private readonly sweeps: UploadSweeps;
  /** @tus/server, made on the first tus request (see `tus()`). */
  private server: Promise<Server> | undefined;
  /** Creation requests that came through a direct upload URL (never a client-settable header), and the upload each makes. */
  private readonly direct = new WeakMap<Request, DirectCreation>();
  /** The upload each creation request registered a video for, answered or not (a failed one has no Location). */
  private readonly creating = new WeakMap<Request, string>();
  /** Creation requests that used up their direct upload URL, and the `used_at` each wrote (its claim, given back if the creation fails before it settles). */
  private readonly consumed = new WeakMap<Request, Date>();
  /** Direct creations whose upload the store made, each its request's: settled as soon as it is made (see `settle`). */
  private readonly toSettle = new WeakMap<Upload, Request>();
  /** Direct creation requests that settled: whatever happens to their body, their upload stays. */
  private readonly settled = new WeakSet<Request>();
  /** Direct creations in flight in this process, by upload id, until they settle or end: a repeat waits for that. */
  private readonly directInFlight = new Map<string, Promise<void>>();
  /** The cross-process locks of uploads and of their hand-overs, made with @tus/server. */
  private locker: Promise<FileLocker> | undefined;
  /** The headers of a hook's error answer (Retry-After), which @tus/server does not send: see `handle`. */
  private readonly hookHeaders = new WeakMap<Request, Headers>();

  constructor(
    private readonly library: VideoLibrary,
    private readonly ingest: IngestPipeline,
    readonly directUploads: DirectUploads,
    options: ResumableUploadOptions,
  ) {
    this.files = new UploadFiles(options.dataDir);
    this.directory = this.files.directory;
    this.expiryMs = options.expiryMs ?? DEFAULT_UPLOAD_EXPIRY_MS;
    this.options = options;
    this.handOver = new UploadHandOver(library, ingest, this.files, () => this.fileLocker());
    this.sweeps = new UploadSweeps(library, directUploads, this.files, this.handOver, this.expiryMs);
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
    return (this.locker ??= import("./file-locker.ts").then(({ FileLocker }) => new FileLocker(this.files.locks)));
  }

  private async makeServer(): Promise<Server> {
    const [{ Server }, { FileStore }, locker] = await Promise.all([import("@tus/server"), import("@tus/file-store"), this.fileLocker()]);
    const options = this.options;
    const datastore = new FileStore({ directory: this.files.directory, expirationPeriodInMilliseconds: this.expiryMs });
    // A direct creation settles as soon as its upload exists: before a creation-with-upload's
    // body, which can take minutes and, if it fails, leaves an upload its client resumes.
    const create = datastore.create.bind(datastore);
    datastore.create = async (upload) => {
      const req = this.toSettle.get(upload);
      // A creation that stalled past DIRECT_CREATION_STALE_MS and was taken over must not make
      // (truncate) the upload file the new holder made under the same id.
      if (req) await this.renewClaim(req);
      const made = await create(upload);
      if (req) await this.settle(req);
      return made;
    };
    return new Server({
      path: UPLOADS_PATH,
      datastore,
      // Exclusive across every process sharing DATA_DIR, not just this one (WORKERS > 1).
      locker,
      maxSize: options.maxUploadBytes,
      relativeLocation: true,
      exposedHeaders: SPOOL_TUS_HEADERS,
      allowedOrigins: tusOrigins(options.corsOrigins ?? ["*"]),
      namingFunction: (req) => this.direct.get(req)?.uploadId ?? newUploadId(newVideoId()),
      onUploadCreate: async (req, upload) => {
        try {
          this.ingest.requireTools();
          const direct = this.direct.get(req)?.row;
          const playback = playbackOf(upload.metadata);
          // A direct upload's title and policy were fixed by the key holder who issued it.
          if (direct) {
            // Used up by a creation that raced this one: which of them makes the upload is not
            // known yet, so this one is told to try again (and then learns the upload, or gets it).
            const claim = await this.directUploads.consume(direct).catch((error: unknown) => {
              throw error instanceof HttpError && error.code === "upload_url_used" ? directUploadCreating() : error;
            });
            this.consumed.set(req, claim);
            // The URL is this creation's alone now. A video already under its id was registered
            // by an earlier creation through it that then died, or lost its INSERT's answer,
            // before settling: nobody was told that upload's URL, so the video goes (begin would
            // refuse the id, and every retry with it). One past uploading (it cannot be, short
            // of a hand-edited database) means the URL did make a video: used for good.
            const leftover = await this.library.get(videoIdOfUpload(upload.id)!);
            if (leftover && leftover.status !== "uploading" && leftover.status !== "failed") {
              await this.directUploads.settle(direct, claim);
              throw directUploadUsed();
            }
            if (leftover) await this.library.remove(leftover.id);
          }
          await this.library.begin({
            id: videoIdOfUpload(upload.id)!,
            originalFilename: metadataValue(upload.metadata, "filename", "name") ?? "upload",
            title: direct?.title ?? metadataValue(upload.metadata, "title"),
            playback: direct ? direct.playback : playback,
          });
          this.creating.set(req, upload.id);
          if (direct) this.toSettle.set(upload, req);
        } catch (error) {
          // Used up, then nothing made (the database refused the video): the URL works again.
          const direct = this.direct.get(req)?.row;
          const claim = this.consumed.get(req);
          if (direct && claim && !this.creating.has(req)) await this.directUploads.restore(direct, claim).catch(() => {});
          throw await this.hookError(req, error);
        }
        return {};
      },
      // The store's own failures (a PATCH's write on a full disk) answer as Spool's routes do;
      // the bytes already stored stay, and the upload resumes once there is room.
      onResponseError: (_req, error) => {
        if (!isDiskFull(error)) return undefined;
        return { status_code: 507, body: JSON.stringify(errorBody("insufficient_storage", "The server has no space left to store this upload; what it stored is kept. Try again later")) };
      },
      onUploadFinish: async (req, upload) => {
        try {
          await this.handOver.finishOnce(upload.id, upload.size ?? upload.offset);
        } catch (error) {
          throw await this.hookError(req, error);
        }
        return { headers: { [VIDEO_ID_HEADER]: videoIdOfUpload(upload.id) ?? "" } };
      },
    });
  }

  /** Renews the direct creation `req`'s claim on its URL (`DirectUploads.fence`); throws (try again: 423) when the URL is no longer its. */
  private async renewClaim(req: Request): Promise<void> {
    try {
      const renewed = await this.directUploads.fence(this.direct.get(req)!.row, this.consumed.get(req)!);
      if (!renewed) throw directUploadCreating();
      this.consumed.set(req, renewed);
    } catch (error) {
      throw await this.hookError(req, error);
    }
  }

  /**
   * Marks the direct creation `req` settled: its upload is made and is not rolled back from now
   * on, so a repeat anywhere may be told its Location. A creation whose claim was taken from it
   * (presumed dead after DIRECT_CREATION_STALE_MS) is told to try again, and leaves the URL to
   * whoever holds it now.
   */
  private async settle(req: Request): Promise<void> {
    const direct = this.direct.get(req)!;
    try {
      if (!(await this.directUploads.settle(direct.row, this.consumed.get(req)!))) throw directUploadCreating();
    } catch (error) {
      throw await this.hookError(req, error);
    }
    this.settled.add(req);
    direct.onSettled?.();
  }

  /** A hook's error for @tus/server to answer, with the headers it drops kept for `handle`. */
  private async hookError(req: Request, error: unknown): Promise<{ status_code: number; body: string }> {
    const [answer, headers] = await tusError(error);
    if (headers) this.hookHeaders.set(req, headers);
    return answer;
  }

  /** Removes the bytes and info file of video `videoId`'s upload, if any, and what says it completed (idempotent). */
  async discard(videoId: string): Promise<void> {
    // Its hand-over's own refusal or failure: the hand-over's caller decides (see `UploadHandOver.handingOver`).
    if (!isVideoId(videoId) || this.handOver.isHandingOver(videoId)) return;
    await this.files.discardVideo(videoId);
  }

  async init(): Promise<void> {
    await this.files.init();
  }

  /** Ids of the videos whose uploads are in the store. */
  async videoIds(): Promise<string[]> {
    return this.files.videoIds();
  }

  /** Ids of the uploads in the store (data file plus info file). */
  async ids(): Promise<string[]> {
    return this.files.ids();
  }

  /** See `UploadHandOver.resumeCompleted`: at start-up, hands over the uploads a crash left complete. */
  resumeCompleted(): Promise<number> {
    return this.handOver.resumeCompleted();
  }

  /** See `UploadHandOver.retryHandOvers`: hands over the complete uploads whose hand-over failed. */
  retryHandOvers(now = Date.now()): Promise<number> {
    return this.handOver.retryHandOvers(now);
  }

  /** See `UploadSweeps.sweepExpired`: deletes the expired uploads and their videos; returns how many. */
  sweepExpired(now = Date.now()): Promise<number> {
    return this.sweeps.sweepExpired(now);
  }

  /** Runs `sweepExpired` periodically, and `retryHandOvers` every HANDOVER_RETRY_MS (primary process only; upload-sweeps.ts). */
  startSweeper(intervalMs = Math.min(Math.max(Math.floor(this.expiryMs / 4), 1000), 15 * 60 * 1000)): void {
    this.sweeps.start(intervalMs);
  }

  stopSweeper(): void {
    this.sweeps.stop();
  }

  /**
   * A creation request through a direct upload URL (`POST /api/uploads/direct/<secret>`, and
   * its CORS preflight): answered as a tus creation at /api/uploads, for that upload only.
   */
  async handleDirect(request: Request, secret: string): Promise<Response> {
    const url = new URL(UPLOADS_PATH, absoluteUrl(request.url)).href;
    if (request.method === "OPTIONS") return this.handle(request, { url });
    let row = await this.directUploads.issued(secret);
    const uploadId = directUploadId(row.videoId, secret);
    if (row.usedAt && request.method === "POST") {
      // The creation it repeats, still in flight here: its outcome decides (settled, or failed and
      // the URL given back). Bounded: a creation whose client vanished ends with its connection.
      const inFlight = this.directInFlight.get(uploadId);
      if (inFlight) {
        await Promise.race([inFlight, Bun.sleep(IN_FLIGHT_WAIT_MS)]);
        row = await this.directUploads.issued(secret);
      }
      if (row.usedAt) {
        const answer = await this.repeated(request, row, uploadId);
        if (answer) return answer;
        // Given back (its creation presumed dead, having made nothing): this request creates.
        row = { ...row, usedAt: null, settledAt: null };
      }
    }
    this.directUploads.checkUsable(row);
    const { promise: settled, resolve } = Promise.withResolvers<void>();
    const creation = this.handle(request, { url, direct: { row, uploadId, onSettled: () => resolve() } });
    // Known as in flight until it settles or has answered (and tidied up after itself), however it ends.
    void creation.then(
      () => resolve(),
      () => resolve(),
    );
    this.directInFlight.set(uploadId, settled);
    void settled.then(() => this.directInFlight.get(uploadId) === settled && this.directInFlight.delete(uploadId));
    return creation;
  }

  /**
   * A creation through a used direct upload URL (`row`, as read now). Settled: the upload its
   * creation made (`createdAgain`), or 410 when that is gone (terminated, expired, its video
   * deleted, completed and forgotten) or another file is declared. Not settled: its creation is
   * still in flight somewhere, or failing and giving the URL back, so 423 (tus clients retry),
   * unless it was used up more than DIRECT_CREATION_STALE_MS ago: its creation is then presumed
   * dead, and what it left decides: an upload is settled and answered as made; none, the URL is
   * given back (undefined: this request creates).
   */
  private async repeated(request: Request, row: DirectUploadRow, uploadId: string): Promise<Response | undefined> {
    if (row.settledAt) {
      const again = await this.createdAgain(request, uploadId);
      if (again instanceof Response) return again;
      throw directUploadUsed();
    }
    if (!(await this.directUploads.stale(row))) throw directUploadCreating();
    const again = await this.createdAgain(request, uploadId);
    if (again === "absent") {
      if (await this.directUploads.release(row)) return undefined;
    } else if (await this.directUploads.settle(row, row.usedAt!)) {
      if (again instanceof Response) return again;
      throw directUploadUsed();
    }
    // Another request settled or took the URL meanwhile: the next try hears what it did.
    throw directUploadCreating();
  }

  /**
   * A creation retried through the direct upload URL that made the upload (its client never
   * heard the 201, so it holds no upload URL, and tus clients retry the creation): the 201 again,
   * with the same Location, and the upload's offset now (`Upload-Offset`), from which the client
   * resumes; the retry's own body is not taken. The answer is tus's own HEAD of that upload made
   * into the 201, so it carries the same CORS headers, and the `Upload-Expires` of tus's own
   * 201 (an upload not complete yet). "another" when the repeat declares another length or
   * other metadata (not the same file), "absent" when there is no such upload (not made, or gone).
   */
  private async createdAgain(original: Request, uploadId: string): Promise<Response | "absent" | "another"> {
    const location = `${UPLOADS_PATH}/${uploadId}`;
    const found = await this.handle(new Request(new URL(location, absoluteUrl(original.url)).href, { method: "HEAD", headers: original.headers, signal: original.signal }));
    // Gone (404, or 410 expired). Anything else (the lock held elsewhere past its wait, a disk
    // error) says nothing about whether it exists: the client is told to try again.
    if (found.status === 404 || found.status === 410) return "absent";
    if (found.status !== 200) throw directUploadCreating();
    const declared = (headers: Headers) => headers.get("upload-length") ?? (headers.get("upload-defer-length") === "1" ? "deferred" : null);
    if (declared(found.headers) === null || declared(found.headers) !== declared(original.headers)) return "another";
    // The same file as far as tus can tell: a client repeating its creation sends the same
    // metadata (a completed upload no longer has any to compare).
    const complete = found.headers.get("upload-offset") === found.headers.get("upload-length");
    if (!complete && metadataKey(found.headers.get("upload-metadata")) !== metadataKey(original.headers.get("upload-metadata"))) return "another";
    const headers = new Headers(found.headers);
    for (const name of ["upload-length", "upload-defer-length", "upload-metadata", "content-length", "content-type"]) headers.delete(name);
    // As @tus/server computes it: the creation date in the upload's info file plus the expiry.
    const created = complete ? 0 : await this.files.createdAt(uploadId);
    if (created > 0 && this.expiryMs > 0) headers.set("upload-expires", new Date(created + this.expiryMs).toUTCString());
    headers.set("location", location);
    headers.set(VIDEO_ID_HEADER, videoIdOfUpload(uploadId) ?? "");
    return new Response(null, { status: 201, headers });
  }

  /**
   * The request @tus/server answers: the client's, at `url`, without the forwarding headers it
   * would refuse, and with the client's signal (a hang-up is seen as one: see `handle`).
   */
  private forTus(request: Request, url: string): Request {
    const headers = new Headers(request.headers);
    for (const name of FORWARDING_HEADERS) headers.delete(name);
    return new Request(absoluteUrl(url), { method: request.method, headers, body: request.body, duplex: "half", signal: request.signal } as RequestInit);
  }

  /** Answers one tus request; errors get Spool's JSON shape, tus headers are kept. */
  async handle(original: Request, { url = original.url, direct }: { url?: string; direct?: DirectCreation } = {}): Promise<Response> {
    const request = this.forTus(original, url);
    if (direct) this.direct.set(request, direct);
    let response = await (await this.tus()).handleWeb(request);
    // A client that hung up mid-PATCH makes @tus/server answer 500 (its body stream failed); the
    // bytes that arrived are kept and the upload resumes. Nobody reads this answer: log it as
    // what it is (nginx's 499, "client closed request"), not as a server error.
    if (response.status === 500 && original.signal.aborted) response = errorResponse(499, "client_closed_request", "The client closed the connection during the upload");
    const headers = new Headers(response.headers);
    // @tus/server names the forwarding headers among those a page may send and read: they never
    // reach it (`forTus`), and no page is invited to send them (what they say is trusted only
    // from a proxy, TRUST_PROXY).
    for (const name of ["access-control-allow-headers", "access-control-expose-headers"]) {
      const listed = headers.get(name);
      if (listed !== null) headers.set(name, listed.split(",").map((h) => h.trim()).filter((h) => !FORWARDING_HEADERS.includes(h.toLowerCase())).join(", "));
    }
    // With an origin list, tus's CORS headers depend on the request's Origin, which @tus/server
    // 2.x does not say: a cache must not give one origin's answer to another (as corsHeaders does
    // for every other route).
    if (corsHeaders(this.options.corsOrigins ?? ["*"], null)?.vary) varyOnOrigin(headers);
    const lastSegment = (path: string) => path.slice(path.lastIndexOf("/") + 1);
    const uploadId = request.method === "POST" ? this.creating.get(request) : lastSegment(new URL(request.url).pathname);
    // Bytes stored by this request (an append, or a creation-with-upload).
    if ((request.method === "PATCH" && response.status === 204) || (request.method === "POST" && response.status === 201)) {
      const stored = Number(headers.get("upload-offset") ?? 0) - Number(request.method === "PATCH" ? (request.headers.get("upload-offset") ?? 0) : 0);
      if (stored > 0) uploadBytes.inc({ via: "tus" }, stored);
    }
    // A settled direct creation's body over its length is a PATCH's: the upload stays, with what fit.
    const kept = request.method === "PATCH" || this.settled.has(request);
    if (kept && response.status === 413 && uploadId && !original.signal.aborted) await this.handOver.finishIfComplete(uploadId);
    // A completed upload's URL: its bytes have left the store, and it still says it is complete.
    if ((request.method === "HEAD" || request.method === "PATCH") && response.status === 404 && uploadId) {
      const size = await this.files.completedSize(uploadId);
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
        const claim = this.consumed.get(request);
        if (request.method === "POST" && response.status >= 400 && !this.settled.has(request)) {
          // A failed creation (a creation-with-upload body over its length, say) that did not
          // settle: its client got no upload URL, so nothing can resume it. Its video and bytes
          // go at once, and a direct upload URL it used up works again: nothing was created (its
          // retry may use it). Unless the URL was taken from it (presumed dead): then they are
          // the new holder's. The claim is renewed first, so that no takeover comes in between.
          const held = direct && claim ? await this.directUploads.fence(direct.row, claim) : null;
          if (direct && claim && !held) return;
          if (row?.status === "uploading") await this.library.remove(id);
          await this.files.discardUpload(uploadId);
          if (direct && held) await this.directUploads.restore(direct.row, held);
        } else if (row?.status !== "uploading") {
          // An upload that was completed (accepted or refused) leaves the tus store.
          await this.files.discardUpload(uploadId);
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

/** Upload-Metadata in a form that compares equal however its pairs are ordered or spaced. */
function metadataKey(header: string | null): string {
  if (!header) return "";
  return header
    .split(",")
    .map((pair) => pair.trim().split(/\s+/))
    .filter(([key]) => key)
    .map(([key, value = ""]) => `${key} ${value}`)
    .sort()
    .join(",");
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

/** HEAD or PATCH on a completed upload (see `UploadFiles.completedSize`): its final offset, as a tus server says it. */
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
