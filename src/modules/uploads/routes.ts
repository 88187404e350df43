/** The tus 1.0 endpoints under /api/uploads (see tus.ts), with their OpenAPI description. */
import { Elysia, t } from "elysia";
import { AUTH_ERRORS, AUTH_RESPONSES, OPEN_SECURITY } from "../../access/plugin.ts";
import { PLAYBACK_POLICIES, type Playback } from "../../db/schema.ts";
import { MAX_TITLE_LENGTH, TITLE_SCHEMA_MAX_LENGTH, checkedTitle } from "../../library/videos.ts";
import { parsePlayback } from "../../schemas/video.ts";
import { errorResponse } from "../../http/errors.ts";
import { videoIdOfUpload } from "./upload-ids.ts";
import { DEFAULT_DIRECT_UPLOAD_TTL_S, DIRECT_UPLOADS_PATH, MAX_DIRECT_UPLOAD_TTL_S } from "./direct.ts";
import { header, jsonContent, withoutBodies } from "../../schemas/openapi.ts";
import { JsonInteger, readJsonBody } from "../../schemas/json-body.ts";
import { errorSchema } from "../../http/error-schemas.ts";
import { UPLOADS_PATH, VIDEO_ID_HEADER, type ResumableUploads } from "./tus.ts";

const TUS_DOC = "https://tus.io/protocols/resumable-upload";

const TusResumable = t.String({ description: "Protocol version; required on every request but OPTIONS (412 without it)", examples: ["1.0.0"] });

const Offset = t.String({ pattern: "^[0-9]+$", description: "Byte offset", examples: ["5242880"] });

const commonHeaders = {
  "Tus-Resumable": header(t.Literal("1.0.0", { description: "The protocol version the server speaks" }), true),
};

const expires = header(t.String({ description: "When this unfinished upload expires (UPLOAD_EXPIRY_MS after creation); 410 afterwards", examples: ["Mon, 23 Nov 2026 10:00:00 GMT"] }));
const videoIdHeader = header(t.String({ description: "The video this upload becomes: GET /api/videos/{id}", examples: ["q7cN0l1dQ5m0tS9xYk3eZA"] }));

function tusError(status: number, description: string, code: string, message: string, headers: Record<string, ReturnType<typeof header>> = {}) {
  const schema = errorSchema(description, code, message);
  return { [status]: { description, headers: { ...commonHeaders, ...headers }, content: jsonContent(schema) } };
}

const UploadIdParams = t.Object({
  id: t.String({ description: "Upload id, from the creation's Location: `<video id>.<secret>`. The URL is the upload's only credential: keep it private.", examples: ["q7cN0l1dQ5m0tS9xYk3eZA.Zm9vYmFyYmF6cXV4cXV1eHh5ejEyMzQ1Njc4"] }),
});

const DirectUploadBody = t.Object(
  {
    // A bound in UTF-16 units; the limit, in characters, is checked on the trimmed title.
    title: t.Optional(t.String({ minLength: 1, maxLength: TITLE_SCHEMA_MAX_LENGTH, description: `The video's title: 1-${MAX_TITLE_LENGTH} characters once surrounding whitespace is trimmed, no control characters (default: from the file name the browser sends)`, error: `body title: must be a string of 1-${MAX_TITLE_LENGTH} characters` })),
    playback: t.Optional(t.String({ enum: [...PLAYBACK_POLICIES], description: "The video's playback policy (default: DEFAULT_PLAYBACK); the browser cannot change it", error: "body playback: must be public or signed" })),
    expiresIn: t.Optional(
      JsonInteger({ minimum: 1, maximum: MAX_DIRECT_UPLOAD_TTL_S, description: `Seconds the URL may be used to start the upload (default ${DEFAULT_DIRECT_UPLOAD_TTL_S}, at most 7 days)`, error: `body expiresIn: must be an integer number of seconds from 1 to ${MAX_DIRECT_UPLOAD_TTL_S}` }),
    ),
  },
  { additionalProperties: false, description: "Optional settings of the upload to come" },
);

const DirectUploadSchema = t.Object(
  {
    uploadUrl: t.String({ description: "A one-time tus creation endpoint: give it to tus-js-client as `endpoint`. No key needed; it creates one upload.", examples: ["/api/uploads/direct/Zm9vYmFyYmF6cXV4cXV1eHh5ejEyMzQ1Njc4OTAxMjM0NTY3ODk"] }),
    videoId: t.String({ description: "The video the upload becomes", examples: ["q7cN0l1dQ5m0tS9xYk3eZA"] }),
    expiresAt: t.String({ format: "date-time", description: "After this the URL answers 410", examples: ["2026-11-22T11:00:00.000Z"] }),
  },
  { description: "A direct upload URL" },
);

const BadRequest = tusError(400, "A required tus header is missing or invalid (Upload-Length, Upload-Metadata, Upload-Offset, Content-Type)", "bad_request", "Upload-Offset header required");
const NotFound = tusError(404, "No such upload: never created, terminated, refused when completed, or expired and swept (a completed one answers as complete for UPLOAD_EXPIRY_MS)", "not_found", "The file for this url was not found");
const Gone = tusError(410, "The upload expired before it was completed (until the sweep deletes it; then 404)", "upload_expired", "The file for this url no longer exists");
const VersionRequired = tusError(412, "Tus-Resumable header missing, or a version this server does not speak; Tus-Version says which it does", "tus_version_required", "Tus-Resumable Required", {
  "Tus-Version": header(t.Literal("1.0.0", { description: "The versions the server speaks" }), true),
});
const TooLarge = tusError(
  413,
  "Upload-Length exceeds MAX_UPLOAD_BYTES, or the body more than the upload declared (a creation request refused so keeps no upload and no video)",
  "payload_too_large",
  "Maximum size exceeded",
);
const NotMediaDescription = "The completed file is not audio or video; nothing was kept";
const NotMedia = tusError(415, NotMediaDescription, "unsupported_media_type", "Not a playable audio or video file (Invalid data found when processing input). Spool accepts video and audio files only.");
const OverLimits = tusError(
  422,
  "The completed file is audio or video but longer than MAX_DURATION_S, with frames larger than MAX_PIXELS (width x height) or faster than MAX_FPS; the message names the limit and the value found. Nothing was kept.",
  "media_limit_exceeded",
  "The video is 600 s long; this server accepts at most 300 s (MAX_DURATION_S)",
);
const Unavailable = tusError(
  503,
  "Try again after `Retry-After` seconds: the database (`database_unavailable`) or the media storage (`storage_unavailable`) is not answering (a final PATCH keeps its bytes, and the server hands the upload over by itself once they answer); or ffmpeg/ffprobe are not installed (`ingest_unavailable`)",
  "database_unavailable",
  "The database is not answering; try again shortly",
  { "Retry-After": header(t.String({ description: "Seconds", examples: ["5"] })) },
);

export function uploadRoutes(uploads: ResumableUploads, ingest: { requireTools(): void }, defaultPlayback: Playback) {
  const handle = ({ request }: { request: Request }) => uploads.handle(request);
  // An upload URL is a capability: anything that is not the shape of one names no upload.
  const existing = ({ request, params }: { request: Request; params: { id: string } }) =>
    videoIdOfUpload(params.id) ? uploads.handle(request) : errorResponse(404, "not_found", "No such upload", { "tus-resumable": "1.0.0" });
  const direct = ({ request, params }: { request: Request; params: { secret: string } }) => uploads.handleDirect(request, params.secret);
  return new Elysia({ name: "spool.uploads" })
    .post(
      DIRECT_UPLOADS_PATH,
      async ({ request, set }) => {
        const body = await readJsonBody(request, DirectUploadBody, { optional: true, usage: 'send nothing, or {"title"?: "...", "playback"?: "public" | "signed", "expiresIn"?: seconds}' });
        ingest.requireTools();
        const issued = await uploads.directUploads.issue({
          // Checked now, not when the browser creates the upload: the URL must be usable.
          title: body?.title?.trim() ? checkedTitle(body.title.trim()) : undefined,
          playback: parsePlayback(body?.playback, "body playback") ?? defaultPlayback,
          expiresIn: body?.expiresIn ?? DEFAULT_DIRECT_UPLOAD_TTL_S,
        });
        set.status = 201;
        set.headers["cache-control"] = "no-store";
        return { uploadUrl: issued.uploadUrl, videoId: issued.videoId, expiresAt: issued.expiresAt.toISOString() };
      },
      {
        // Read by hand: Elysia takes a malformed optional body for none (src/schemas/json-body.ts).
        parse: "none",
        response: { 201: DirectUploadSchema, 400: errorSchema("Malformed body", "bad_request", "body expiresIn: must be an integer number of seconds from 1 to 604800"), ...AUTH_ERRORS, 415: errorSchema("A body that is not JSON", "unsupported_media_type", "Send the body as application/json"), 503: errorSchema("ffmpeg/ffprobe are not installed: ingest is off", "ingest_unavailable", "Ingest needs ffmpeg and ffprobe, which this server cannot find") },
        detail: {
          operationId: "createDirectUpload",
          tags: ["uploads"],
          summary: "A one-time upload URL for a browser without the key",
          requestBody: { required: false, content: jsonContent(DirectUploadBody) },
          description:
            "For uploads straight from a user's browser, as Mux's direct uploads: your backend (with the key) asks for a URL and passes it to the page, which uploads with tus-js-client (`endpoint: uploadUrl`) and no key. The URL creates one upload, for `videoId`, with the title and playback policy chosen here. A creation sent again through it with the same `Upload-Length` and `Upload-Metadata` (a client that never got the first 201) is answered 201 with that upload's `Location` and its `Upload-Offset` now, while that upload lasts (423 `upload_creation_in_progress` until the first creation has made its upload for good, or failed and given the URL back; after 2 minutes without either it is presumed dead and the repeat takes over); any other second use answers 410 `upload_url_used`, a first use after `expiresAt` 410 `upload_url_expired`, and a URL this server never issued 403 `upload_url_invalid`. Nothing is created in any of these cases.",
        },
      },
    )
    .options(`${DIRECT_UPLOADS_PATH}/:secret`, direct, {
      params: t.Object({ secret: t.String() }),
      detail: { security: OPEN_SECURITY, operationId: "preflightDirectUpload", tags: ["uploads"], summary: "tus: CORS preflight for a direct upload URL", responses: { 204: { description: "Capabilities" } } },
    })
    .post(`${DIRECT_UPLOADS_PATH}/:secret`, direct, {
      parse: "none",
      params: t.Object({ secret: t.String({ description: "From `uploadUrl`" }) }),
      detail: {
        security: OPEN_SECURITY,
        operationId: "createUploadDirect",
        tags: ["uploads"],
        summary: "tus: create the upload of a direct upload URL (no key)",
        description: "A tus creation request, as `POST /api/uploads`, authorised by the URL. It creates one upload: repeated with the same `Upload-Length` and `Upload-Metadata` while that upload lasts, it answers 201 with the same `Location` and the upload's `Upload-Offset` now (its body is not taken), or 423 until the first creation has made its upload for good; otherwise 410. A creation-with-upload whose body then fails keeps its upload with what was stored: a repeat gets it.",
        responses: {
          201: { description: "Created; Location is the upload URL", headers: { ...commonHeaders, Location: header(t.String({ examples: ["/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.Zm9vYmFyYmF6cXV4cXV1eHh5ejEyMzQ1Njc4"] }), true), [VIDEO_ID_HEADER]: videoIdHeader } },
          ...tusError(403, "Not a direct upload URL this server issued", "upload_url_invalid", "This is not a direct upload URL this server issued"),
          ...tusError(410, "The URL was used already (`upload_url_used`) or has expired (`upload_url_expired`)", "upload_url_used", "This direct upload URL was already used; ask for a new one"),
          ...tusError(423, "An earlier creation through this URL has neither made its upload for good nor failed yet: try again after Retry-After (tus clients do)", "upload_creation_in_progress", "This direct upload URL's upload is being created by an earlier request; try again shortly", { "Retry-After": header(t.String({ description: "Seconds", examples: ["1"] })) }),
          ...BadRequest,
          ...VersionRequired,
          ...TooLarge,
          ...NotMedia,
          ...OverLimits,
        },
      },
    })
    .options(UPLOADS_PATH, handle, {
      detail: {
        security: OPEN_SECURITY,
        operationId: "discoverUploads",
        tags: ["uploads"],
        summary: "tus: server capabilities",
        description: `Answers with Tus-Version, Tus-Extension and Tus-Max-Size (and CORS preflight headers). See ${TUS_DOC}.`,
        responses: {
          204: {
            description: "Capabilities",
            headers: {
              "Tus-Version": header(t.String({ examples: ["1.0.0"] }), true),
              "Tus-Extension": header(t.String({ examples: ["creation,creation-with-upload,creation-defer-length,termination,expiration"] }), true),
              "Tus-Max-Size": header(t.String({ description: "MAX_UPLOAD_BYTES", examples: ["8589934592"] })),
            },
          },
        },
      },
    })
    .post(UPLOADS_PATH, handle, {
      parse: "none",
      headers: t.Object({
        "tus-resumable": t.Optional(TusResumable),
        "upload-length": t.Optional(t.String({ pattern: "^[0-9]+$", description: "Total size in bytes (or send Upload-Defer-Length: 1)", examples: ["104857600"] })),
        "upload-defer-length": t.Optional(t.String({ description: "`1` when the size is not known yet", examples: ["1"] })),
        "upload-metadata": t.Optional(
          t.String({
            description: "Comma-separated `key base64(value)` pairs. Spool reads `filename` (or `name`), `title` and `playback` (`public` or `signed`); the file's type is decided by its bytes, never by metadata.",
            examples: ["filename aG9saWRheS5tb3Y=,title SG9saWRheSAyMDI2"],
          }),
        ),
      }),
      detail: {
        operationId: "createUpload",
        tags: ["uploads"],
        summary: "tus: create a resumable upload",
        description: `Needs the API key (browsers without it use a direct upload URL). Creates an upload and registers its video in state \`uploading\`. The body may already carry the first bytes (creation-with-upload, Content-Type: application/offset+octet-stream), or all of them: the file is then ingested within this request (415, 422 as for the last PATCH). A creation that fails (a body longer than Upload-Length: 413) keeps no upload and no video. Works with tus-js-client and Uppy. See ${TUS_DOC}.`,
        requestBody: {
          required: false,
          content: { "application/offset+octet-stream": { schema: t.String({ format: "binary", description: "Optional first bytes of the file" }) } },
        },
        responses: {
          201: {
            description: "Created",
            headers: {
              ...commonHeaders,
              Location: header(t.String({ description: "The upload URL (relative)", examples: ["/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA"] }), true),
              [VIDEO_ID_HEADER]: videoIdHeader,
              "Upload-Offset": header(t.String({ description: "Bytes stored so far (creation-with-upload)" })),
              "Upload-Expires": expires,
            },
          },
          ...BadRequest,
          ...AUTH_RESPONSES,
          ...VersionRequired,
          ...TooLarge,
          ...NotMedia,
          ...OverLimits,
          ...Unavailable,
        },
      },
    })
    .options(`${UPLOADS_PATH}/:id`, handle, {
      params: UploadIdParams,
      detail: {
        security: OPEN_SECURITY,
        operationId: "preflightUpload",
        tags: ["uploads"],
        summary: "tus: capabilities / CORS preflight for an upload URL",
        responses: { 204: { description: "Capabilities" } },
      },
    })
    .head(`${UPLOADS_PATH}/:id`, existing, {
      params: UploadIdParams,
      headers: t.Object({ "tus-resumable": t.Optional(TusResumable) }),
      detail: {
        security: OPEN_SECURITY,
        operationId: "getUploadOffset",
        tags: ["uploads"],
        summary: "tus: how many bytes the server has",
        description: "Resume from `Upload-Offset` after a dropped connection.",
        responses: withoutBodies({
          200: {
            description: "The upload's state (no body)",
            headers: {
              ...commonHeaders,
              "Upload-Offset": header(Offset, true),
              "Upload-Length": header(t.String({ description: "Total size, when known" })),
              "Upload-Defer-Length": header(t.String({ description: "`1` while the size is not known" })),
              "Upload-Metadata": header(t.String({ description: "As sent at creation" })),
              "Cache-Control": header(t.Literal("no-store")),
            },
          },
          ...NotFound,
          ...Gone,
          ...VersionRequired,
        }),
      },
    })
    .patch(`${UPLOADS_PATH}/:id`, existing, {
      parse: "none",
      params: UploadIdParams,
      headers: t.Object({
        "tus-resumable": t.Optional(TusResumable),
        "upload-offset": t.Optional(t.String({ ...Offset, description: "Required: where these bytes go; must equal the server's offset (409 otherwise)" })),
        "upload-length": t.Optional(t.String({ pattern: "^[0-9]+$", description: "Declares the size of a deferred-length upload" })),
      }),
      detail: {
        security: OPEN_SECURITY,
        operationId: "appendUpload",
        tags: ["uploads"],
        summary: "tus: append bytes at an offset",
        description:
          "When the last byte arrives the file enters the ingest pipeline within this request: 204 with the video `processing` (Spool-Video-Id names it), 415 when the bytes are not audio or video, or 422 when they are longer than MAX_DURATION_S, larger than MAX_PIXELS or faster than MAX_FPS (the upload and its video are then deleted). It happens once: a PATCH at the final offset of a completed upload (sent again) is 204 and starts nothing. A chunked body running past Upload-Length keeps the bytes up to it and gets 413; if they complete the upload, it is handed over all the same.",
        requestBody: { required: true, content: { "application/offset+octet-stream": { schema: t.String({ format: "binary" }) } } },
        responses: {
          204: {
            description: "Stored; Upload-Offset is the new offset",
            headers: { ...commonHeaders, "Upload-Offset": header(Offset, true), "Upload-Expires": expires, [VIDEO_ID_HEADER]: videoIdHeader },
          },
          ...BadRequest,
          ...NotFound,
          ...tusError(409, "Upload-Offset does not match the server's offset", "offset_conflict", "Upload-Offset conflict"),
          ...Gone,
          ...VersionRequired,
          ...TooLarge,
          ...tusError(415, `${NotMediaDescription}; or the body is not \`application/offset+octet-stream\``, "unsupported_media_type", "Not a playable audio or video file (Invalid data found when processing input). Spool accepts video and audio files only."),
          ...OverLimits,
          ...Unavailable,
        },
      },
    })
    .delete(`${UPLOADS_PATH}/:id`, existing, {
      params: UploadIdParams,
      headers: t.Object({ "tus-resumable": t.Optional(TusResumable) }),
      detail: {
        security: OPEN_SECURITY,
        operationId: "terminateUpload",
        tags: ["uploads"],
        summary: "tus: abandon an upload",
        description: "Deletes the partial bytes and the `uploading` video they were for.",
        responses: { 204: { description: "Terminated", headers: commonHeaders }, ...NotFound, ...VersionRequired },
      },
    });
}
