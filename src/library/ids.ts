/** Video ids: 128 random bits, base64url (22 characters). Opaque and unguessable. */
import { badRequest } from "../http/errors.ts";

export function newVideoId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
}

/** The demo's id: seeded into every library a server starts on (unless SEED_DEMO=0), with the same files. */
export const DEMO_VIDEO_ID = "demo";

/** Generated ids are 22 characters; short fixed ids (the demo's) are allowed too. */
export const VIDEO_ID_PATTERN = /^[A-Za-z0-9_-]{4,64}$/;

export function isVideoId(value: string): boolean {
  return VIDEO_ID_PATTERN.test(value);
}

export function assertVideoId(value: string): string {
  if (!isVideoId(value)) throw badRequest(`"${value.slice(0, 80)}" is not a video id (4-64 characters of A-Z a-z 0-9 _ -)`);
  return value;
}
