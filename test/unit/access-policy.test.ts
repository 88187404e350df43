import { describe, expect, test } from "bun:test";
import { isLimitedMutation } from "../../src/access/mutation-limit.ts";
import { accessFor, type Access } from "../../src/access/policy.ts";

const ID = "q7cN0l1dQ5m0tS9xYk3eZA";
const UPLOAD = `${ID}.Zm9vYmFyYmF6cXV4cXV1eHh5ejEyMzQ1Njc4`;

describe("accessFor: which requests need the management credentials", () => {
  const cases: [string, string, Access][] = [
    // Management: every mutation, the list, events, tokens, direct uploads, metrics.
    ["POST", "/api/videos", "key"],
    ["GET", "/api/videos", "key"],
    ["HEAD", "/api/videos", "key"],
    ["PATCH", `/api/videos/${ID}`, "key"],
    ["DELETE", `/api/videos/${ID}`, "key"],
    ["PUT", `/api/videos/${ID}`, "key"],
    ["POST", `/api/videos/${ID}/hls/retry`, "key"],
    ["POST", `/api/videos/${ID}/retry`, "key"],
    ["POST", `/api/videos/${ID}/tokens`, "key"],
    ["GET", `/api/videos/${ID}/events`, "key"],
    ["GET", "/api/videos/events", "key"],
    ["HEAD", "/api/videos/events", "key"],
    ["POST", "/api/uploads", "key"],
    ["POST", "/api/uploads/direct", "key"],
    ["GET", "/metrics", "key"],
    ["GET", "/metrics/", "key"],
    ["GET", "/metrics/x", "key"],
    ["GET", "/metricsx", "open"],
    // Deny by default: unknown API paths and methods need the key.
    ["GET", "/api/anything-new", "key"],
    ["GET", "/api/", "key"],
    ["POST", `/api/stream/${ID}`, "key"],
    ["DELETE", `/api/hls/${ID}/master.m3u8`, "key"],
    ["POST", `/api/videos/${ID}/thumbnail.jpg`, "key"],
    ["PATCH", "/api/uploads/direct", "key"],
    ["PATCH", "/api/uploads/direct/secret", "key"],
    ["GET", `/api/videos/${ID}/thumbnail.png`, "key"],
    ["GET", `/api/videos/${ID}/`, "key"],
    // Playback: open (each route checks the video's own policy).
    ["GET", `/api/stream/${ID}`, "open"],
    ["HEAD", `/api/stream/${ID}`, "open"],
    ["GET", `/api/hls/${ID}/master.m3u8`, "open"],
    ["GET", `/api/hls/${ID}/720p/seg_00001.m4s`, "open"],
    ["GET", `/api/videos/${ID}`, "open"],
    ["GET", `/api/videos/${ID}/thumbnail.jpg`, "open"],
    ["HEAD", `/api/videos/${ID}/thumbnail.jpg`, "open"],
    // Sessions.
    ["POST", "/api/session", "open"],
    ["DELETE", "/api/session", "open"],
    ["GET", "/api/session", "key"],
    // tus: the upload URL and the direct-upload URL are capabilities.
    ["HEAD", `/api/uploads/${UPLOAD}`, "open"],
    ["PATCH", `/api/uploads/${UPLOAD}`, "open"],
    ["DELETE", `/api/uploads/${UPLOAD}`, "open"],
    ["POST", `/api/uploads/${UPLOAD}`, "key"],
    ["POST", "/api/uploads/direct/abc123", "open"],
    // CORS preflights carry no credentials.
    ["OPTIONS", "/api/videos", "open"],
    ["OPTIONS", "/api/uploads", "open"],
    // Pages, assets, docs, health.
    ["GET", "/", "open"],
    ["GET", `/watch/${ID}`, "open"],
    ["GET", "/assets/library.js", "open"],
    ["GET", "/static/a/b.txt", "open"],
    ["GET", "/swagger", "open"],
    ["GET", "/swagger/json", "open"],
    ["GET", "/health", "open"],
  ];
  test.each(cases)("%s %s → %s", (method, path, expected) => {
    expect(accessFor(method, path)).toBe(expected);
  });
});

describe("isLimitedMutation: what the per-client change limit counts", () => {
  const cases: [string, string, boolean][] = [
    ["GET", "/api/stream/demo", false],
    ["HEAD", "/api/videos/demo", false],
    ["OPTIONS", "/api/uploads", false],
    ["GET", "/api/videos", false],
    ["POST", "/api/videos", true],
    ["PATCH", "/api/videos/demo", true],
    ["DELETE", "/api/videos/demo", true],
    ["POST", "/api/session", true],
    ["POST", "/api/uploads", true],
    ["DELETE", `/api/uploads/${UPLOAD}`, true],
    // A large tus upload is many appends: its size bounds it, not a request count.
    ["PATCH", `/api/uploads/${UPLOAD}`, false],
  ];
  test.each(cases)("%s %s → %p", (method, path, expected) => expect(isLimitedMutation(method, path)).toBe(expected));
});
