/**
 * The one error shape every Spool endpoint answers with:
 *   {"error": {"code": "not_found", "message": "No video with id ..."}}
 * `code` is stable and machine-readable; `message` is for humans and may change.
 */

export interface ErrorBody {
  error: { code: string; message: string };
}

/** Throw anywhere in a handler; the app's error hook turns it into the JSON shape. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export const badRequest = (message: string) => new HttpError(400, "bad_request", message);
export const notFound = (message = "Not found") => new HttpError(404, "not_found", message);
/** §13.2.2: If-Match or If-Unmodified-Since did not hold (files and list pages alike). */
export const preconditionFailed = () => new HttpError(412, "precondition_failed", "A precondition in the request did not hold");

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

export const JSON_TYPE = "application/json; charset=utf-8";

export function errorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(errorBody(code, message)), {
    status,
    // nosniff: a message may echo what the client sent (an id in the path).
    headers: { "content-type": JSON_TYPE, "cache-control": "no-store", "x-content-type-options": "nosniff", ...headers },
  });
}

/** 405 Method Not Allowed, with the methods the resource does support (RFC 9110 §15.5.6). */
export function methodNotAllowed(method: string, where: string, allow: string): Response {
  return errorResponse(405, "method_not_allowed", `${method} is not allowed ${where}`, { allow });
}

export function httpErrorResponse(error: HttpError): Response {
  return errorResponse(error.status, error.code, error.message, error.headers);
}
