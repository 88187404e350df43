/**
 * Streams a multipart/form-data upload (field `file`, optional `title`) to a temporary file,
 * hashing as it goes; nothing is buffered whole. MAX_UPLOAD_BYTES is enforced against a declared
 * Content-Length before reading a byte, and while streaming, where the request is cut off with
 * 413 the moment the file part passes the limit, or the whole body (every part, skipped ones
 * too) passes it plus a small framing allowance, chunked or not. Any failure removes every trace.
 *
 * The received bytes then go to the ingest pipeline, which decides from the bytes alone
 * whether they are media (415 otherwise) and answers with the video in state `processing`.
 */
import { uploadBytes } from "../../metrics/metrics.ts";
import { createWriteStream } from "node:fs";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import busboy from "busboy";
import { PLAYBACK_POLICIES, type Playback, type VideoRow } from "../../db/schema.ts";
import { HttpError, badRequest } from "../../http/errors.ts";
import { UPLOAD_FRAMING_ALLOWANCE, capBody } from "../body-limit/plugin.ts";
import type { IngestPipeline } from "../ingest/pipeline.ts";
import type { VideoLibrary } from "../../library/videos.ts";

export const payloadTooLarge = (limit: number) =>
  new HttpError(413, "payload_too_large", `The upload exceeds the limit of ${limit} bytes (MAX_UPLOAD_BYTES)`);

/**
 * When an upload is refused part-way (a bad title, a second failure), a small body is read to its
 * end and discarded before the answer goes out, as nginx's lingering close does: a client still
 * sending when the server closes usually sees a connection reset, not the JSON error. Large or
 * undeclared bodies are cut off at once; that is what the early refusal is for.
 */
const LINGER_BYTES = 8 * 1024 * 1024;
const LINGER_MS = 2000;

export async function receiveUpload(request: Request, library: VideoLibrary, ingest: IngestPipeline, maxBytes: number): Promise<VideoRow> {
  // Refuse before reading a byte whenever the answer is already known.
  ingest.requireTools();
  const type = request.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("multipart/form-data")) {
    throw new HttpError(415, "unsupported_media_type", "Send the video as multipart/form-data with a `file` field");
  }
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > maxBytes + UPLOAD_FRAMING_ALLOWANCE) throw payloadTooLarge(maxBytes);
  if (!request.body) throw badRequest("The request has no body");

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { "content-type": type },
      // Browsers and curl send a file name's UTF-8 bytes as they are (HTML's form-data
      // encoding); busboy 1.6 would read them as Latin-1 ("café" became "cafÃ©").
      defParamCharset: "utf8",
      limits: { files: 1, fileSize: maxBytes, fields: 4, fieldSize: 4096, parts: 8 },
    });
  } catch {
    throw badRequest("The multipart body has no boundary");
  }

  let title: string | undefined;
  let playback: Playback | undefined;
  let row: VideoRow | undefined;
  let tempPath: string | undefined;
  let sha256 = "";
  let fileDone: Promise<void> | undefined;
  let fail!: (error: unknown) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {});

  parser.on("field", (name, value) => {
    if (name === "title") title = value;
    if (name === "playback") {
      if ((PLAYBACK_POLICIES as readonly string[]).includes(value)) playback = value as Playback;
      else fail(badRequest(`playback: must be ${PLAYBACK_POLICIES.join(" or ")}`));
    }
  });
  parser.on("file", (name, stream, info) => {
    // The parser destroys a part's stream with an error when the body is cut off or refused; a
    // stream nobody is piping yet (its row still being made, or a part skipped) must not turn
    // that into an uncaught exception, which ends the process. The pipeline below sees errors.
    stream.on("error", () => {});
    if (name !== "file" || fileDone) {
      stream.resume();
      return;
    }
    fileDone = (async () => {
      row = await library.begin({ originalFilename: info.filename || "upload", title, playback });
      tempPath = library.storage.tempPath();
      const hasher = new Bun.CryptoHasher("sha256");
      stream.on("limit", () => stream.destroy(payloadTooLarge(maxBytes)));
      const hash = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hasher.update(chunk);
          uploadBytes.inc({ via: "multipart" }, chunk.byteLength);
          callback(null, chunk);
        },
      });
      await pipeline(stream, hash, createWriteStream(tempPath));
      if ((stream as { truncated?: boolean }).truncated) throw payloadTooLarge(maxBytes);
      sha256 = hasher.digest("hex");
    })();
    fileDone.catch((error) => {
      stream.resume();
      fail(error);
    });
  });

  // Every byte of the body counts, not only the file's: other parts are read (and skipped) too.
  const body = capBody(request.body, maxBytes + UPLOAD_FRAMING_ALLOWANCE, () => payloadTooLarge(maxBytes));
  const source = Readable.fromWeb(body as unknown as import("node:stream/web").ReadableStream);
  const parsed = pipeline(source, parser).catch((error) => {
    throw error instanceof HttpError ? error : new HttpError(400, "upload_incomplete", "The upload was cut short or is not valid multipart/form-data");
  });
  parsed.catch(() => {});

  try {
    // The first failure wins, even while the client is still sending (413 mid-stream).
    await Promise.race([parsed, failed]);
    if (!fileDone) throw badRequest("The form has no `file` field");
    await Promise.race([fileDone, failed]);
  } catch (error) {
    const lingering = (error as HttpError).status !== 413 && declared <= LINGER_BYTES;
    if (lingering) await Promise.race([parsed.catch(() => {}), Bun.sleep(LINGER_MS)]);
    source.destroy();
    // The file part may still be settling (its row being created, its file closing): let it,
    // briefly, so that what it made is removed below rather than left behind.
    if (fileDone) await Promise.race([fileDone.catch(() => {}), Bun.sleep(LINGER_MS)]);
    if (row) await library.abandon(row.id, tempPath);
    throw error;
  }

  let current = row!;
  try {
    const wanted = title?.trim();
    // The title or playback field arrived after the file part: apply it now.
    const changes = { title: wanted && current.title !== wanted ? wanted : undefined, playback: playback && current.playback !== playback ? playback : undefined };
    if (changes.title !== undefined || changes.playback !== undefined) current = await library.update(current.id, changes);
  } catch (error) {
    await library.abandon(current.id, tempPath);
    throw error;
  }
  return ingest.accept(current, tempPath!, { sha256 });
}
