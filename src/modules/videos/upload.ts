/**
 * Streams a multipart/form-data upload (field `file`, optional `title`) to a temporary file,
 * hashing as it goes; nothing is buffered whole. The video becomes visible as `ready` only after
 * the last byte arrived and the file was renamed into place; any failure removes every trace.
 */
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import busboy from "busboy";
import { HttpError, badRequest } from "../../http/errors.ts";
import type { VideoRow } from "../../db/schema.ts";
import type { VideoLibrary } from "./service.ts";

export const payloadTooLarge = (limit: number) =>
  new HttpError(413, "payload_too_large", `The upload exceeds the limit of ${limit} bytes (MAX_UPLOAD_BYTES)`);

/** Slack for multipart framing and the title field on top of the file itself. */
const FRAMING_ALLOWANCE = 64 * 1024;

export async function receiveUpload(request: Request, library: VideoLibrary, maxBytes: number): Promise<VideoRow> {
  const type = request.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("multipart/form-data")) {
    throw new HttpError(415, "unsupported_media_type", "Send the video as multipart/form-data with a `file` field");
  }
  // Refuse before reading a byte when the client announces too much.
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > maxBytes + FRAMING_ALLOWANCE) throw payloadTooLarge(maxBytes);
  if (!request.body) throw badRequest("The request has no body");

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { "content-type": type },
      limits: { files: 1, fileSize: maxBytes, fields: 4, fieldSize: 4096, parts: 8 },
    });
  } catch {
    throw badRequest("The multipart body has no boundary");
  }

  let title: string | undefined;
  let row: VideoRow | undefined;
  let tempPath: string | undefined;
  let failure: unknown;
  let sha256 = "";
  let size = 0;
  const writes: Promise<void>[] = [];

  parser.on("field", (name, value) => {
    if (name === "title") title = value;
  });
  parser.on("file", (name, stream, info) => {
    if (name !== "file" || row || failure) {
      stream.resume();
      return;
    }
    writes.push(
      (async () => {
        try {
          row = await library.begin({ originalFilename: info.filename || "upload", title });
          tempPath = library.storage.tempPath();
          const hasher = new Bun.CryptoHasher("sha256");
          stream.on("data", (chunk: Buffer) => {
            hasher.update(chunk);
            size += chunk.byteLength;
          });
          stream.on("limit", () => stream.destroy(payloadTooLarge(maxBytes)));
          await pipeline(stream, createWriteStream(tempPath));
          if ((stream as { truncated?: boolean }).truncated) throw payloadTooLarge(maxBytes);
          sha256 = hasher.digest("hex");
        } catch (error) {
          failure ??= error;
          stream.resume();
        }
      })(),
    );
  });

  try {
    await pipeline(Readable.fromWeb(request.body as unknown as import("node:stream/web").ReadableStream), parser);
  } catch (error) {
    failure ??= error instanceof HttpError ? error : new HttpError(400, "upload_incomplete", "The upload was cut short or is not valid multipart/form-data");
  }
  await Promise.all(writes);

  if (!failure && !row) failure = badRequest("The form has no `file` field");
  if (failure) {
    if (row) await library.abandon(row.id, tempPath);
    throw failure;
  }
  try {
    if (title !== undefined && title.trim() && row!.title !== title.trim()) {
      // The title field arrived after the file part: apply it now.
      row = await library.rename(row!.id, title.trim());
    }
    return await library.complete(row!, { tempPath: tempPath!, size, sha256 });
  } catch (error) {
    await library.abandon(row!.id, tempPath);
    throw error;
  }
}
