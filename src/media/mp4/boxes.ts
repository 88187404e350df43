/**
 * ISO BMFF boxes in memory: a bounds-checked reader over a buffer, and a writer. Pure: no I/O.
 *
 * Every size and count read here comes from an untrusted file, so each one is checked against
 * the bytes actually present before anything is allocated or indexed.
 */

export class Mp4Error extends Error {
  override name = "Mp4Error";
}

/** A box inside a buffer: `start` is its header's offset, `body` where its payload begins. */
export interface BoxRef {
  type: string;
  start: number;
  body: number;
  end: number;
}

/** Nesting deeper than this is hostile: real files go five or six levels down. */
const MAX_DEPTH = 16;

/** The boxes directly inside bytes[from, to). Throws Mp4Error on a box that does not fit. */
export function childBoxes(bytes: Uint8Array, from: number, to: number, depth = 0): BoxRef[] {
  if (depth > MAX_DEPTH) throw new Mp4Error("boxes nested too deep");
  if (to > bytes.length || from < 0 || from > to) throw new Mp4Error("box range outside the buffer");
  const view = viewOf(bytes);
  const boxes: BoxRef[] = [];
  let offset = from;
  while (offset < to) {
    // QuickTime allows a 32-bit zero terminator at the end of a container.
    if (to - offset < 8) {
      if (to - offset === 4 && view.getUint32(offset) === 0) break;
      throw new Mp4Error(`truncated box header at ${offset}`);
    }
    let size = view.getUint32(offset);
    const type = fourcc(bytes, offset + 4);
    let body = offset + 8;
    if (size === 1) {
      if (to - offset < 16) throw new Mp4Error(`truncated largesize at ${offset}`);
      const large = view.getBigUint64(offset + 8);
      // Anything past the buffer fails the check below; this only keeps the number exact.
      size = large > BigInt(to - offset) ? to - offset + 1 : Number(large);
      body = offset + 16;
    } else if (size === 0) {
      size = to - offset;
    }
    if (size < body - offset) throw new Mp4Error(`box "${printable(type)}" at ${offset} has impossible size ${size}`);
    if (offset + size > to) throw new Mp4Error(`box "${printable(type)}" at ${offset} overruns its parent`);
    boxes.push({ type, start: offset, body, end: offset + size });
    offset += size;
  }
  return boxes;
}

export function fourcc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
}

function printable(type: string): string {
  return /^[\x20-\x7e]{4}$/.test(type) ? type : "?";
}

const views = new WeakMap<Uint8Array, DataView>();

export function viewOf(bytes: Uint8Array): DataView {
  let view = views.get(bytes);
  if (!view) views.set(bytes, (view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
  return view;
}

/**
 * A cursor over a box's payload that refuses to read past it. `u64` returns a Number and fails
 * above 2^53: no real duration or offset is that large, and a hostile one must not wrap.
 */
export class Reader {
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {
    this.view = viewOf(bytes);
  }

  need(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new Mp4Error("box payload is truncated");
  }
  remaining(): number {
    return this.end - this.pos;
  }
  u8(): number {
    this.need(1);
    return this.bytes[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Mp4Error("64-bit value too large");
    return Number(v);
  }
  i64(): number {
    this.need(8);
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new Mp4Error("64-bit value too large");
    return Number(v);
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  /** version (8 bits) and flags (24 bits) of a FullBox. */
  fullHeader(): { version: number; flags: number } {
    const word = this.u32();
    return { version: word >>> 24, flags: word & 0xffffff };
  }
  /** An entry count whose entries of `entrySize` bytes must all be present: no allocation past the file. */
  count(entrySize: number): number {
    const n = this.u32();
    if (n * entrySize > this.remaining()) throw new Mp4Error(`entry count ${n} exceeds the box`);
    return n;
  }
  /**
   * Claims `n` bytes at once and returns where they start, for a table read with `be32`: one
   * bounds check for the whole table instead of one per entry (a two-hour film's tables hold
   * over a million entries; per-entry checks were most of the parse).
   */
  take(n: number): number {
    this.need(n);
    const at = this.pos;
    this.pos += n;
    return at;
  }
}

/** The big-endian unsigned 32-bit word at `at` (the caller checked the bounds, see Reader.take). */
export function be32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** Serialises boxes: a growable big-endian buffer with size back-patching. */
export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(capacity = 4096) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.view.setInt32(this.pos, v);
    this.pos += 4;
  }
  u64(v: number): void {
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt(v));
    this.pos += 8;
  }
  i64(v: number): void {
    this.ensure(8);
    this.view.setBigInt64(this.pos, BigInt(v));
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  fourcc(type: string): void {
    this.ensure(4);
    for (let i = 0; i < 4; i++) this.buf[this.pos++] = type.charCodeAt(i);
  }
  setU32(at: number, v: number): void {
    this.view.setUint32(at, v);
  }
  setU64(at: number, v: number): void {
    this.view.setBigUint64(at, BigInt(v));
  }
  /** Opens a box; pass the returned mark to `end`, which writes its size. */
  begin(type: string): number {
    const mark = this.pos;
    this.u32(0);
    this.fourcc(type);
    return mark;
  }
  beginFull(type: string, version: number, flags: number): number {
    const mark = this.begin(type);
    this.u32(((version & 0xff) << 24) | (flags & 0xffffff));
    return mark;
  }
  end(mark: number): void {
    const size = this.pos - mark;
    if (size > 0xffffffff) throw new Mp4Error("box too large to write");
    this.view.setUint32(mark, size);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}
