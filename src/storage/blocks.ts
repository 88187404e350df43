/**
 * Block arithmetic for the byte caches, pure (no I/O): an object of `size` bytes is cut into
 * aligned blocks of `blockSize` bytes (the last one shorter), as nginx's slice module does, so
 * that any range maps to a few whole blocks that can be cached, shared and evicted on their own.
 * The disk tier (block-cache.ts) uses it now; the RAM tier of hot blocks (issue 15) is meant to
 * use the same functions, so both tiers agree on what "block 7 of this object" is.
 *
 * Ranges here are inclusive, as in Content-Range and src/http/range.ts (`ByteRange`).
 */

/**
 * The disk tier's block: 2 MiB. A cold seek costs one block fetch from the bucket, and a hot
 * range of up to 2 MiB usually lies in one block, so it goes out with a single sendfile
 * (measured against s3rver on loopback: see the README's Object storage section).
 */
export const DEFAULT_BLOCK_SIZE = 2 * 1024 * 1024;

/** An inclusive byte interval of the object (same shape as src/http/range.ts's ByteRange). */
export interface Span {
  start: number;
  end: number;
}

/** Part of a range that lies in one block: `length` bytes at `offset` within block `index`. */
export interface BlockSlice {
  index: number;
  offset: number;
  length: number;
}

/** Throws unless `blockSize` is a power of two of at least 4 KiB (so blocks align with pages). */
export function checkBlockSize(blockSize: number): void {
  if (!Number.isSafeInteger(blockSize) || blockSize < 4096 || (blockSize & (blockSize - 1)) !== 0) {
    throw new RangeError(`block size must be a power of two >= 4096, got ${blockSize}`);
  }
}

/** How many blocks an object of `size` bytes has (0 for an empty object). */
export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

/** The block that holds byte `offset`. Plain division: offsets go past 2^32. */
export function blockOf(offset: number, blockSize: number): number {
  return Math.floor(offset / blockSize);
}

/** The bytes of block `index` of an object of `size` bytes (the last block is shorter). */
export function blockSpan(index: number, blockSize: number, size: number): Span {
  const start = index * blockSize;
  if (index < 0 || start >= size) throw new RangeError(`block ${index} is outside an object of ${size} bytes`);
  return { start, end: Math.min(start + blockSize, size) - 1 };
}

/** The length of block `index` (blockSize, except for the last block). */
export function blockLength(index: number, blockSize: number, size: number): number {
  const span = blockSpan(index, blockSize, size);
  return span.end - span.start + 1;
}

/** Throws unless `range` is a non-empty inclusive range inside an object of `size` bytes. */
export function checkRange(range: Span, size: number): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end >= size) {
    throw new RangeError(`range ${start}-${end} is not inside an object of ${size} bytes`);
  }
}

/** The first and last block a range touches. */
export function blocksOf(range: Span, blockSize: number, size: number): { first: number; last: number } {
  checkRange(range, size);
  return { first: blockOf(range.start, blockSize), last: blockOf(range.end, blockSize) };
}

/**
 * A range as the ordered slices of the blocks it covers: concatenated, they are exactly the
 * range's bytes. The first slice may start inside its block, the last may end inside its block.
 */
export function sliceRange(range: Span, blockSize: number, size: number): BlockSlice[] {
  const { first, last } = blocksOf(range, blockSize, size);
  const slices: BlockSlice[] = [];
  for (let index = first; index <= last; index++) {
    const blockStart = index * blockSize;
    const from = Math.max(range.start, blockStart);
    const to = Math.min(range.end, blockStart + blockSize - 1);
    slices.push({ index, offset: from - blockStart, length: to - from + 1 });
  }
  return slices;
}
