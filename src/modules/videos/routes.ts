/** Library routes: upload, list, read, retitle, delete. */
import { Elysia, t } from "elysia";
import { VIDEO_STATUSES, type VideoStatus } from "../../db/schema.ts";
import { badRequest } from "../../http/errors.ts";
import { assertVideoId } from "./ids.ts";
import { ErrorSchema, ListQuerySchema, VideoListSchema, VideoSchema, toVideoJson } from "./schemas.ts";
import type { VideoLibrary } from "./service.ts";
import { receiveUpload } from "./upload.ts";

export function videoRoutes(library: VideoLibrary, maxUploadBytes: number) {
  return new Elysia({ name: "spool.videos", prefix: "/api/videos" })
    .post(
      "",
      async ({ request, set }) => {
        const row = await receiveUpload(request, library, maxUploadBytes);
        set.status = 201;
        set.headers.location = `/api/videos/${row.id}`;
        return toVideoJson(row);
      },
      {
        // The body is streamed to disk by receiveUpload; Elysia must not buffer it.
        parse: "none",
        detail: {
          summary: "Upload a video",
          description: "multipart/form-data with a `file` field and an optional `title`. Streamed to disk; the video is listed only once complete.",
        },
        response: { 201: VideoSchema, 400: ErrorSchema, 413: ErrorSchema, 415: ErrorSchema },
      },
    )
    .get(
      "",
      async ({ query }) => {
        const status = query.status as VideoStatus | undefined;
        if (status !== undefined && !VIDEO_STATUSES.includes(status)) throw badRequest(`query status: must be one of ${VIDEO_STATUSES.join(", ")}`);
        const page = await library.list({ limit: query.limit ?? 50, cursor: query.cursor, status });
        return { items: page.items.map(toVideoJson), nextCursor: page.nextCursor };
      },
      { query: ListQuerySchema, response: { 200: VideoListSchema, 400: ErrorSchema }, detail: { summary: "List videos, newest first" } },
    )
    .get("/:id", async ({ params }) => toVideoJson(await library.require(assertVideoId(params.id))), {
      response: { 200: VideoSchema, 400: ErrorSchema, 404: ErrorSchema },
      detail: { summary: "Get a video" },
    })
    .patch("/:id", async ({ params, body }) => toVideoJson(await library.rename(assertVideoId(params.id), body.title.trim())), {
      body: t.Object({ title: t.String({ minLength: 1, maxLength: 500 }) }),
      response: { 200: VideoSchema, 400: ErrorSchema, 404: ErrorSchema },
      detail: { summary: "Change a video's title" },
    })
    .delete(
      "/:id",
      async ({ params, set }) => {
        const id = assertVideoId(params.id);
        await library.require(id);
        await library.remove(id);
        set.status = 204;
      },
      { response: { 204: t.Void(), 400: ErrorSchema, 404: ErrorSchema }, detail: { summary: "Delete a video and all its files" } },
    );
}
