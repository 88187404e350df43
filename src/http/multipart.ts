/**
 * multipart/byteranges framing (RFC 9110 §14.6). Pure: builds the text between parts; the
 * engine interleaves it with file slices.
 */
import { contentRange, type ByteRange } from "./range.ts";

/** A boundary that cannot collide with anything we frame: random and long. */
export function makeBoundary(): string {
  return `spool_${crypto.randomUUID().replaceAll("-", "")}`;
}

export function multipartContentType(boundary: string): string {
  return `multipart/byteranges; boundary=${boundary}`;
}

export interface MultipartLayout {
  /** [text, range, text, range, ..., text]: heads[i] precedes ranges[i]; `tail` closes. */
  heads: string[];
  tail: string;
  length: number;
}

export function layoutMultipart(ranges: ByteRange[], size: number, contentType: string, boundary: string): MultipartLayout {
  const heads = ranges.map(
    (r, i) =>
      `${i === 0 ? "" : "\r\n"}--${boundary}\r\nContent-Type: ${contentType}\r\nContent-Range: ${contentRange(r, size)}\r\n\r\n`,
  );
  const tail = `\r\n--${boundary}--\r\n`;
  let length = tail.length;
  for (const [i, r] of ranges.entries()) length += heads[i]!.length + (r.end - r.start + 1);
  return { heads, tail, length };
}
