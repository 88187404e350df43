/**
 * The I/O around the pure clip code: finds `ftyp` and `moov` among a file's top-level boxes
 * (reading 16-byte headers only) and reads just those two boxes.
 */
import { BoxError, scanTopLevelBoxes } from "../mp4-atoms.ts";
import { Mp4Error } from "./boxes.ts";
import { parseMovie, type Movie } from "./movie.ts";

/** nginx's mp4_max_buffer_size is 10 MiB; a ten-hour file's `moov` is about that, so allow more. */
export const DEFAULT_MAX_MOOV_BYTES = 64 * 1024 * 1024;

export interface MovieFile {
  movie: Movie;
  ftyp?: Uint8Array;
  /** Bytes this takes in memory (for byte-bounded caches). */
  cost: number;
}

interface TopBox {
  type: string;
  offset: number;
  size: number;
}

/** Reads `length` bytes at `offset` (fewer at the end of the source). */
export type MovieReader = (offset: number, length: number) => Promise<Uint8Array>;

/** A local file's bytes. */
export function fileBytes(path: string): MovieReader {
  return async (offset, length) => new Uint8Array(await Bun.file(path).slice(offset, offset + length).arrayBuffer());
}

/** The top-level boxes, by the box scanner ingest uses; its refusals are clip refusals here. */
async function topLevel(read: MovieReader, fileSize: number): Promise<TopBox[]> {
  try {
    return await scanTopLevelBoxes(read, fileSize);
  } catch (error) {
    if (error instanceof BoxError) throw new Mp4Error(error.message);
    throw error;
  }
}

/** Reads and parses the file's `moov` (and `ftyp`). Throws Mp4Error when it is not a cuttable MP4. */
export function readMovieFile(path: string, fileSize: number, maxMoovBytes = DEFAULT_MAX_MOOV_BYTES): Promise<MovieFile> {
  return readMovie(fileBytes(path), fileSize, maxMoovBytes);
}

/** The same from any source of bytes (an object in a bucket, through its cache). */
export async function readMovie(read: MovieReader, fileSize: number, maxMoovBytes = DEFAULT_MAX_MOOV_BYTES): Promise<MovieFile> {
  const boxes = await topLevel(read, fileSize);
  if (boxes.some((b) => b.type === "moof")) throw new Mp4Error("fragmented MP4 (moof) is not supported");
  const moov = boxes.find((b) => b.type === "moov");
  if (!moov) throw new Mp4Error("no moov box");
  if (moov.size > maxMoovBytes) throw new Mp4Error(`moov of ${moov.size} bytes is over the limit of ${maxMoovBytes}`);
  const ftypBox = boxes.find((b) => b.type === "ftyp");
  const [read0, ftyp] = await Promise.all([read(moov.offset, moov.size), ftypBox && ftypBox.size <= 4096 ? read(ftypBox.offset, ftypBox.size) : undefined]);
  if (read0.length !== moov.size) throw new Mp4Error("the file changed while its moov was read");
  // The parsed tables are views into these bytes: they must own their buffer, or a larger one
  // (a source's block) would be held and not counted.
  const bytes = read0.byteOffset === 0 && read0.byteLength === read0.buffer.byteLength ? read0 : read0.slice();
  const movie = parseMovie(bytes);
  return { movie, ftyp, cost: movieCost(movie) + (ftyp?.length ?? 0) };
}

/**
 * The memory a parsed movie holds, for byte-bounded caches: its `moov` bytes and every sample
 * table, a typed array by its length in bytes (a view into the `moov` itself, like `stsz` and
 * `stco`, costs nothing more) and a plain array of numbers (only `sbgp` runs) at 12 bytes an
 * element (JSC's 8, and the spare capacity of arrays grown by push), plus slack for the objects.
 * Counted from the tables themselves: a two-hour film with B-frames holds a 7.1 MiB `moov` and
 * about 11.5 MiB in all (26 MiB while runs were plain arrays and every table a copy).
 */
export function movieCost(movie: Movie): number {
  const moov = movie.bytes.buffer;
  let total = 4096;
  const add = (value: unknown, depth: number): void => {
    if (ArrayBuffer.isView(value)) total += value.buffer === moov ? 0 : value.byteLength;
    else if (Array.isArray(value)) {
      total += 16 + value.length * 12;
      if (depth < 4 && value.length > 0 && typeof value[0] === "object") for (const item of value) add(item, depth + 1);
    } else if (value !== null && typeof value === "object" && depth < 4) {
      total += 64;
      for (const key in value) add((value as Record<string, unknown>)[key], depth + 1);
    }
  };
  total += movie.bytes.byteLength;
  for (const track of movie.tracks) add(track.tables, 0);
  return total;
}
