/** The tus 1.0 endpoints under /api/uploads (see tus.ts), with their OpenAPI description. */
import { Elysia, t } from "elysia";
import { header, jsonContent } from "../openapi/doc.ts";
import { VideoIdParams, errorSchema } from "../videos/schemas.ts";
import { UPLOADS_PATH, VIDEO_ID_HEADER, type ResumableUploads } from "./tus.ts";

const TUS_DOC = "https://tus.io/protocols/resumable-upload";

const TusResumable = t.String({ description: "Protocol version; required on every request but OPTIONS (412 without it)", examples: ["1.0.0"] });

const Offset = t.String({ pattern: "^[0-9]+$", description: "Byte offset", examples: ["5242880"] });

const commonHeaders = {
  "Tus-Resumable": header(t.Literal("1.0.0", { description: "The protocol version the server speaks" }), true),
};

const expires = header(t.String({ description: "When this unfinished upload expires (UPLOAD_EXPIRY_MS after creation); 410 afterwards", examples: ["Mon, 23 Nov 2026 10:00:00 GMT"] }));
const videoIdHeader = header(t.String({ description: "The video this upload becomes: GET /api/videos/{id}", examples: ["q7cN0l1dQ5m0tS9xYk3eZA"] }));

function tusError(status: number, description: string, code: string, message: string) {
  const schema = errorSchema(description, code, message);
  return { [status]: { description, headers: commonHeaders, content: jsonContent(schema) } };
}

const UploadIdParams = t.Object({
  id: t.String({ ...VideoIdParams.properties.id, description: "Upload id: the same as the id of the video it becomes" }),
});

const BadRequest = tusError(400, "A required tus header is missing or invalid (Upload-Length, Upload-Metadata, Upload-Offset, Content-Type)", "bad_request", "Upload-Offset header required");
const NotFound = tusError(404, "No such upload (never created, completed, terminated or swept)", "not_found", "The file for this url was not found");
const Gone = tusError(410, "The upload expired before it was completed", "upload_expired", "The file for this url no longer exists");
const VersionRequired = tusError(412, "Tus-Resumable header missing or unsupported", "tus_version_required", "Tus-Resumable Required");
const TooLarge = tusError(413, "Upload-Length (or the bytes sent) exceeds MAX_UPLOAD_BYTES", "payload_too_large", "Maximum size exceeded");
const Unavailable = tusError(503, "ffmpeg/ffprobe are not installed: ingest is off", "ingest_unavailable", "Ingest needs ffmpeg and ffprobe, which this server cannot find");

export function uploadRoutes(uploads: ResumableUploads) {
  const handle = ({ request }: { request: Request }) => uploads.handle(request);
  return new Elysia({ name: "spool.uploads" })
    .options(UPLOADS_PATH, handle, {
      detail: {
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
            description: "Comma-separated `key base64(value)` pairs. Spool reads `filename` (or `name`) and `title`; the file's type is decided by its bytes, never by metadata.",
            examples: ["filename aG9saWRheS5tb3Y=,title SG9saWRheSAyMDI2"],
          }),
        ),
      }),
      detail: {
        operationId: "createUpload",
        tags: ["uploads"],
        summary: "tus: create a resumable upload",
        description: `Creates an upload and registers its video in state \`uploading\`. The body may already carry the first bytes (creation-with-upload, Content-Type: application/offset+octet-stream). Works with tus-js-client and Uppy. See ${TUS_DOC}.`,
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
          ...VersionRequired,
          ...TooLarge,
          ...Unavailable,
        },
      },
    })
    .options(`${UPLOADS_PATH}/:id`, handle, {
      params: UploadIdParams,
      detail: {
        operationId: "preflightUpload",
        tags: ["uploads"],
        summary: "tus: capabilities / CORS preflight for an upload URL",
        responses: { 204: { description: "Capabilities" } },
      },
    })
    .head(`${UPLOADS_PATH}/:id`, handle, {
      params: UploadIdParams,
      headers: t.Object({ "tus-resumable": t.Optional(TusResumable) }),
      detail: {
        operationId: "getUploadOffset",
        tags: ["uploads"],
        summary: "tus: how many bytes the server has",
        description: "Resume from `Upload-Offset` after a dropped connection.",
        responses: {
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
        },
      },
    })
    .patch(`${UPLOADS_PATH}/:id`, handle, {
      parse: "none",
      params: UploadIdParams,
      headers: t.Object({
        "tus-resumable": t.Optional(TusResumable),
        "upload-offset": t.Optional(t.String({ ...Offset, description: "Required: where these bytes go; must equal the server's offset (409 otherwise)" })),
        "upload-length": t.Optional(t.String({ pattern: "^[0-9]+$", description: "Declares the size of a deferred-length upload" })),
      }),
      detail: {
        operationId: "appendUpload",
        tags: ["uploads"],
        summary: "tus: append bytes at an offset",
        description:
          "When the last byte arrives the file enters the ingest pipeline within this request: 204 with the video `processing` (Spool-Video-Id names it), or 415 when the bytes are not audio or video (the upload and its video are then deleted).",
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
          ...tusError(415, "The completed file is not audio or video; nothing was kept", "unsupported_media_type", "Not a playable audio or video file (Invalid data found when processing input). Spool accepts video and audio files only."),
          ...Unavailable,
        },
      },
    })
    .delete(`${UPLOADS_PATH}/:id`, handle, {
      params: UploadIdParams,
      headers: t.Object({ "tus-resumable": t.Optional(TusResumable) }),
      detail: {
        operationId: "terminateUpload",
        tags: ["uploads"],
        summary: "tus: abandon an upload",
        description: "Deletes the partial bytes and the `uploading` video they were for.",
        responses: { 204: { description: "Terminated", headers: commonHeaders }, ...NotFound, ...VersionRequired },
      },
    });
}
