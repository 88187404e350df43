/**
 * Request-body limits with JSON errors.
 *
 * Bun's own `maxRequestBodySize` answers an oversize Content-Length with a bare 413 before any
 * handler runs, so it is set high and the limits live here instead: uploads may be as large as
 * MAX_UPLOAD_BYTES (their routes enforce it again while streaming), everything else is a small
 * JSON body that Elysia buffers, so it must declare a modest Content-Length.
 *
 * A declared Content-Length is all this hook can judge: a chunked body's size is known only as
 * it arrives. Routes that stream a body count it with `capBody` (multipart uploads: the whole
 * body, every part, preamble and epilogue, not just the file) or with @tus/server's limiter
 * (tus: each body bounded by the upload's declared length, itself at most MAX_UPLOAD_BYTES).
 */
import { Elysia } from "elysia";
import { isJsonContentType } from "../../http/content-type.ts";
import { HttpError } from "../../http/errors.ts";
import { requestPath } from "../../http/path.ts";
import { SIGN_IN_BODY_LIMIT } from "../../access/sessions.ts";
import { DIRECT_UPLOADS_PATH } from "../uploads/direct.ts";

export const JSON_BODY_LIMIT = 1024 * 1024;
/** Multipart framing and form fields on top of the file itself (a few short fields fit well within). */
export const UPLOAD_FRAMING_ALLOWANCE = 64 * 1024;

/**
 * `body`, counted as it streams: once more than `limit` bytes have passed, the stream errors
 * with `tooLarge()` (reading stops there, so a route answers 413 while the client still sends).
 */
export function capBody(body: ReadableStream<Uint8Array>, limit: number, tooLarge: () => Error): ReadableStream<Uint8Array> {
  let received = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        received += chunk.byteLength;
        if (received > limit) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
}

/**
 * Whether a request may carry a video (MAX_UPLOAD_BYTES): a multipart `POST /api/videos` and the
 * tus routes. The JSON bodies that share their paths are small and read whole: the URL-import
 * form of `POST /api/videos` and the request for a direct upload URL (`POST /api/uploads/direct`;
 * its URLs, `/api/uploads/direct/<secret>`, are tus creations and stay uploads).
 */
function isUploadRoute(method: string, path: string, contentType: string | null): boolean {
  if (method === "POST" && path === "/api/videos") return !isJsonContentType(contentType);
  return path === "/api/uploads" || (path.startsWith("/api/uploads/") && path !== DIRECT_UPLOADS_PATH);
}

export function bodyLimits(maxUploadBytes: number) {
  // Refusals are thrown, not returned, so that they are logged and counted (see src/access/plugin.ts).
  return new Elysia({ name: "spool.body-limits" }).onRequest(({ request }) => {
    const method = request.method;
    // The hot path (GET/HEAD streaming) pays one string comparison.
    if (method === "GET" || method === "HEAD" || method === "OPTIONS") return;
    const path = requestPath(request.url);
    const upload = isUploadRoute(method, path, request.headers.get("content-type"));
    const [limit, what] = upload
      ? [maxUploadBytes + UPLOAD_FRAMING_ALLOWANCE, `the limit of ${maxUploadBytes} bytes (MAX_UPLOAD_BYTES)`]
      : method === "POST" && path === "/api/session"
        ? [SIGN_IN_BODY_LIMIT, `${SIGN_IN_BODY_LIMIT} bytes, the limit for signing in`]
        : [JSON_BODY_LIMIT, `${JSON_BODY_LIMIT} bytes, the limit for a JSON body`];
    const declared = request.headers.get("content-length");
    if (declared !== null) {
      if (Number(declared) > limit) {
        throw new HttpError(413, "payload_too_large", `The request body exceeds ${what}`);
      }
    } else if (!upload && request.headers.get("transfer-encoding") !== null) {
      // A JSON body of unknown length would be buffered without bound.
      throw new HttpError(411, "length_required", "Send a Content-Length with the request body");
    }
  });
}
