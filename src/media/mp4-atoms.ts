/**
 * A scanner for the top-level boxes ("atoms") of an ISO BMFF file (MP4, MOV, M4A, 3GP).
 *
 * It reads only box headers, 8 or 16 bytes at each box boundary, through a `ByteReader`, so
 * deciding whether a multi-gigabyte file is "faststart" (its `moov` index before the `mdat`
 * media data, which lets a browser start playing without fetching the file's tail) costs a
 * handful of tiny reads. The parsing is pure; `fileReader` adapts a file with `Bun.file().slice()`.
 */

export interface Box {
  type: string;
  /** Offset of the box header in the file. */
  offset: number;
  /** Total size including the header. */
  size: number;
}

/** Returns up to `length` bytes at `offset` (fewer only at the end of the file). */
export type ByteReader = (offset: number, length: number) => Promise<Uint8Array>;

export class BoxError extends Error {
  override name = "BoxError";
}

const TYPE = /^[\x20-\x7e]{4}$/;

/** Stops scanning after this many boxes: a real file has a dozen at most. */
const MAX_BOXES = 10_000;
/**
 * Zero bytes after the last box are padding (cameras that preallocate their files, some copy
 * tools), which ffmpeg and players ignore; up to this much is read to make sure it is all zeros.
 * More is refused: it is read again whenever the file's boxes are (ingest, the first clip).
 */
export const MAX_TRAILING_PADDING = 64 * 1024 * 1024;
const PADDING_CHUNK = 1024 * 1024;

function allZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Whether everything from `offset` to the end is zero bytes (at most MAX_TRAILING_PADDING of them). */
async function isTrailingPadding(read: ByteReader, offset: number, fileSize: number): Promise<boolean> {
  if (fileSize - offset > MAX_TRAILING_PADDING) return false;
  for (let at = offset; at < fileSize; at += PADDING_CHUNK) {
    const chunk = await read(at, Math.min(PADDING_CHUNK, fileSize - at));
    if (chunk.length === 0 || !allZero(chunk)) return false;
  }
  return true;
}

/**
 * Lists the top-level boxes. Throws BoxError when the structure is not ISO BMFF (a box that
 * overruns the file, an impossible size, a non-printable type). Zero bytes after the last box
 * (up to MAX_TRAILING_PADDING) are padding, not a box: they end the list.
 */
export async function scanTopLevelBoxes(read: ByteReader, fileSize: number): Promise<Box[]> {
  const boxes: Box[] = [];
  let offset = 0;
  while (offset < fileSize) {
    if (boxes.length >= MAX_BOXES) throw new BoxError("too many top-level boxes");
    const head = await read(offset, 16);
    // A header of zeros (size 0, type 0000) is no box: padding to the end, or damage.
    if (offset > 0 && head.length > 0 && allZero(head.subarray(0, 8)) && (await isTrailingPadding(read, offset, fileSize))) break;
    if (head.length < 8) throw new BoxError(`truncated box header at ${offset}`);
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    let size = view.getUint32(0);
    const type = String.fromCharCode(head[4]!, head[5]!, head[6]!, head[7]!);
    if (!TYPE.test(type)) throw new BoxError(`not a box type at ${offset}`);
    let headerSize = 8;
    if (size === 1) {
      // 64-bit "largesize" follows the type.
      if (head.length < 16) throw new BoxError(`truncated largesize at ${offset}`);
      const large = view.getBigUint64(8);
      if (large > BigInt(Number.MAX_SAFE_INTEGER)) throw new BoxError(`box too large at ${offset}`);
      size = Number(large);
      headerSize = 16;
    } else if (size === 0) {
      // "Extends to the end of the file": only legal for the last box.
      size = fileSize - offset;
    }
    if (size < headerSize) throw new BoxError(`box "${type}" at ${offset} has impossible size ${size}`);
    if (offset + size > fileSize) throw new BoxError(`box "${type}" at ${offset} overruns the file`);
    boxes.push({ type, offset, size });
    offset += size;
  }
  return boxes;
}

/** Whether the `moov` box precedes the first `mdat` (or there is no media data box at all). */
export function isFaststart(boxes: Box[]): boolean {
  const moov = boxes.findIndex((b) => b.type === "moov");
  const mdat = boxes.findIndex((b) => b.type === "mdat");
  if (moov < 0) return false;
  return mdat < 0 || moov < mdat;
}

export function fileReader(path: string): ByteReader {
  const file = Bun.file(path);
  return async (offset, length) => new Uint8Array(await file.slice(offset, offset + length).arrayBuffer());
}

/** Reads `path`'s top-level boxes; the file's size is taken from disk. */
export async function scanFile(path: string): Promise<Box[]> {
  const size = Bun.file(path).size;
  return scanTopLevelBoxes(fileReader(path), size);
}
