/**
 * tus upload ids: `<video id>.<secret>`. The upload URL is a capability (whoever holds it may
 * append to or cancel that upload, with no other credential, as tus clients expect), so it must
 * not be derivable from the video id, which the library lists. The video id is still in it so
 * that every upload maps to its video without a lookup. Pure.
 */
import { createHash, randomBytes } from "node:crypto";
import { isVideoId } from "../../library/ids.ts";

const SECRET = /^[A-Za-z0-9_-]{32}$/;

export function newUploadId(videoId: string): string {
  return `${videoId}.${randomBytes(24).toString("base64url")}`;
}

/**
 * The upload a direct upload URL creates: derived from the URL's secret, so that a creation
 * retried through the same URL (its client never heard the 201) finds the upload it made
 * without the database keeping the upload's secret. Only the URL's holder can derive it (the
 * database keeps a different digest of that secret, see `secretDigest`).
 */
export function directUploadId(videoId: string, directSecret: string): string {
  return `${videoId}.${createHash("sha256").update("spool direct upload\0").update(directSecret).digest("base64url").slice(0, 32)}`;
}

/** The video an upload id belongs to, or null when it is not an upload id. */
export function videoIdOfUpload(uploadId: string): string | null {
  const dot = uploadId.lastIndexOf(".");
  if (dot < 0) return null;
  const videoId = uploadId.slice(0, dot);
  return isVideoId(videoId) && SECRET.test(uploadId.slice(dot + 1)) ? videoId : null;
}
