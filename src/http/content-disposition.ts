/**
 * Content-Disposition values, RFC 6266 with RFC 8187 `filename*`. Pure.
 */

export type DispositionType = "inline" | "attachment";

/** RFC 8187 attr-char: what may appear unencoded in `filename*`. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

function encodeExtValue(value: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(value)) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && ATTR_CHAR.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * A plain-ASCII stand-in for old clients: accents are stripped (é → e), other non-ASCII and
 * control characters become "_", and the quoted-string specials are dropped.
 */
export function asciiFallback(name: string): string {
  const stripped = name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
  const safe = stripped.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_").replace(/[/]/g, "_");
  return safe.trim() || "download";
}

/**
 * The bidirectional formatting characters (marks, embeddings, overrides, isolates): invisible,
 * and they reorder what follows, so that `\u202Etxt.exe.mp4` shows as `…4pm.exe.txt`: a name
 * that lies about its extension. A download's name carries none of them.
 */
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Removes path separators, control characters and bidi controls a filename must never carry. */
export function sanitizeFilename(name: string): string {
  return name.replace(BIDI_CONTROLS, "").replace(/[\u0000-\u001f\u007f-\u009f/\\]/g, "_").trim();
}

/**
 * `attachment; filename="fallback"; filename*=UTF-8''encoded`. The `filename*` parameter is
 * added only when the fallback differs, which keeps ASCII names short and exact.
 */
export function contentDisposition(type: DispositionType, filename?: string): string {
  if (!filename) return type;
  const clean = sanitizeFilename(filename) || "download";
  const fallback = asciiFallback(clean);
  let value = `${type}; filename="${fallback}"`;
  if (fallback !== clean) value += `; filename*=UTF-8''${encodeExtValue(clean)}`;
  return value;
}
