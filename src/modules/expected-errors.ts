/**
 * The JSON answers for errors a handler may throw on purpose, shared by the Elysia app's onError
 * (src/web.ts) and the native routes, which have none (stream, HLS): an HttpError, a bucket that
 * cannot answer or lost an object, a database that cannot be reached, a disk that is full.
 * Anything else is a bug and a logged 500, answered by the caller.
 */
import { isDatabaseUnavailable } from "../db/unavailable.ts";
import { errorResponse, httpErrorResponse, HttpError } from "../http/errors.ts";
import { isDiskFull } from "../lib/disk-full.ts";
import { errorFields, logger } from "../lib/log.ts";
import { ObjectNotFound, StorageUnavailable } from "../storage/object-store.ts";
import { RETRY_AFTER_S, storageErrorResponse } from "../storage/error-response.ts";

const log = logger("db");
/** Space is made by an operator, not in seconds. */
const DISK_FULL_RETRY_AFTER_S = 60;

/** The answer for `error`, or null when it is not one a handler throws on purpose. */
export function expectedErrorResponse(error: unknown): Response | null {
  if (error instanceof HttpError) return httpErrorResponse(error);
  if (error instanceof StorageUnavailable || error instanceof ObjectNotFound) return storageErrorResponse(error);
  if (isDiskFull(error)) {
    logger("disk").error(errorFields(error), "no space left to write");
    // 507 Insufficient Storage (RFC 4918 §11.5): the request may succeed once space is made.
    return errorResponse(507, "insufficient_storage", "The server has no space left to store this; nothing was kept. Try again later", { "retry-after": String(DISK_FULL_RETRY_AFTER_S) });
  }
  if (isDatabaseUnavailable(error)) {
    log.warn(errorFields(error), "database unavailable");
    return errorResponse(503, "database_unavailable", "The database is not answering; try again shortly", { "retry-after": String(RETRY_AFTER_S) });
  }
  return null;
}
