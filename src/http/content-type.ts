/**
 * File extension → media type, for containers and the few web assets Spool serves. Pure.
 * Values follow nginx's mime.types and the IANA registry; text types carry a charset.
 */
const TYPES: Record<string, string> = {
  // video containers
  mp4: "video/mp4",
  m4v: "video/x-m4v",
  mov: "video/quicktime",
  webm: "video/webm",
  mkv: "video/x-matroska",
  ogv: "video/ogg",
  avi: "video/x-msvideo",
  flv: "video/x-flv",
  "3gp": "video/3gpp",
  mpg: "video/mpeg",
  mpeg: "video/mpeg",
  // streaming (HLS, DASH): .ts is MPEG transport stream here, never TypeScript
  ts: "video/mp2t",
  m2ts: "video/mp2t",
  m3u8: "application/vnd.apple.mpegurl",
  m4s: "video/iso.segment",
  mpd: "application/dash+xml",
  vtt: "text/vtt; charset=utf-8",
  // audio
  mp3: "audio/mpeg",
  m4a: "audio/mp4",
  aac: "audio/aac",
  ogg: "audio/ogg",
  oga: "audio/ogg",
  opus: "audio/ogg",
  wav: "audio/wav",
  flac: "audio/flac",
  // images
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  svg: "image/svg+xml",
  ico: "image/x-icon",
  // web
  html: "text/html; charset=utf-8",
  htm: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  json: "application/json",
  map: "application/json",
  txt: "text/plain; charset=utf-8",
  xml: "application/xml",
  wasm: "application/wasm",
  pdf: "application/pdf",
  woff: "font/woff",
  woff2: "font/woff2",
  zip: "application/zip",
};

export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

/** The lower-cased extension of a path or file name, without the dot ("" when none). */
export function extensionOf(name: string): string {
  const base = name.slice(name.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : "";
}

export function contentTypeFor(name: string): string {
  return TYPES[extensionOf(name)] ?? DEFAULT_CONTENT_TYPE;
}

/** Whether a request's Content-Type names JSON (`application/json`, or a `+json` type). Pure. */
export function isJsonContentType(contentType: string | null): boolean {
  const type = (contentType ?? "").toLowerCase();
  return type.startsWith("application/json") || /^application\/[a-z0-9.+-]+\+json/.test(type);
}
