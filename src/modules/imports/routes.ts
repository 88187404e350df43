/**
 * The JSON form of `POST /api/videos`: `{"url": "https://...", "title"?: "...", "playback"?: ...}`
 * → 201 with the new video, which then downloads in the background (follow it with
 * `GET /api/videos/:id/events` or `GET /api/videos/events`). The multipart route in
 * src/modules/videos/routes.ts hands JSON bodies here (one method and path, two body types).
 */
import { t } from "elysia";
import type { VideoRow } from "../../db/schema.ts";
import { badRequest } from "../../http/errors.ts";
import { MAX_TITLE_LENGTH, TITLE_SCHEMA_MAX_LENGTH } from "../../library/videos.ts";
import { parsePlayback } from "../../schemas/video.ts";
import { readJsonBody } from "../../schemas/json-body.ts";
import type { ImportService } from "./service.ts";

export const ImportBody = t.Object(
  {
    url: t.String({ minLength: 1, maxLength: 8192, description: "An `http` or `https` URL of a video or audio file; the server downloads it (redirects followed, public addresses only unless IMPORT_ALLOW_PRIVATE)", examples: ["https://media.example.com/holiday.mp4"] }),
    title: t.Optional(
      // A bound in UTF-16 units; the limit, in characters, is checked on the trimmed title.
      t.String({ minLength: 1, maxLength: TITLE_SCHEMA_MAX_LENGTH, description: `Title: 1-${MAX_TITLE_LENGTH} characters once surrounding whitespace is trimmed, no control characters (defaults to the URL's file name without extension)`, examples: ["Holiday 2026"], error: `body title: must be a string of 1-${MAX_TITLE_LENGTH} characters` }),
    ),
    playback: t.Optional(t.String({ enum: ["public", "signed"], description: "`public` or `signed` (default: DEFAULT_PLAYBACK)", examples: ["public"] })),
  },
  { description: "Import from a URL", additionalProperties: false, examples: [{ url: "https://media.example.com/holiday.mp4", title: "Holiday 2026" }] },
);

/** Reads and checks an import body (400 with the first problem), then starts the import. */
export async function importFromRequest(request: Request, imports: ImportService): Promise<VideoRow> {
  const body = await readJsonBody(request, ImportBody, { usage: 'send {"url": "https://...", "title"?: "...", "playback"?: "public" | "signed"}' });
  const title = body.title?.trim();
  if (title === "") throw badRequest("body title: must not be blank");
  return imports.start(body.url, { title, playback: parsePlayback(body.playback, "body playback") });
}

/** The OpenAPI `requestBody` entry of the JSON form, next to the multipart one. */
export const IMPORT_REQUEST_CONTENT = { "application/json": { schema: ImportBody as object } };

export const IMPORT_DESCRIPTION =
  " **Or import from a URL**: `Content-Type: application/json` with `{\"url\": \"https://...\", \"title\"?, \"playback\"?}`. The answer is 201 at once with the video `importing` while the server downloads it (progress in `GET /api/videos/events`), then `processing` and `ready`, or `failed` with the reason in `error` (`source answered 404 Not Found`, `timed out after 30 s without data`, the upload's message for non-media). Only http(s), public addresses (checked on every connection and redirect) unless IMPORT_ALLOW_PRIVATE. A URL that can never work is refused with 400 and nothing is created: `invalid_url` (not http(s), malformed), `blocked_address` (loopback, private, link-local... by its literal address), `host_not_allowed` (not in IMPORT_ALLOWED_HOSTS).";
