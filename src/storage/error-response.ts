/** The JSON answer for a storage failure, for the bucket's engine (./serve.ts) and every route's error mapping. */
import { errorResponse } from "../http/errors.ts";
import { errorFields, logger } from "../lib/log.ts";
import { ObjectNotFound, StorageUnavailable } from "./object-store.ts";

/** How long a client is told to wait before asking again while the bucket (or the database) is down. */
export const RETRY_AFTER_S = 5;

const log = logger("storage");

/** 503 while the bucket cannot answer, 404 for a missing object; anything else is rethrown. */
export function storageErrorResponse(error: unknown): Response {
  if (error instanceof ObjectNotFound) return errorResponse(404, "not_found", "The file is no longer available");
  if (error instanceof StorageUnavailable) {
    log.warn(errorFields(error), "object storage unavailable");
    return errorResponse(503, "storage_unavailable", "The media storage is not answering; try again shortly", { "retry-after": String(RETRY_AFTER_S) });
  }
  throw error;
}
