/**
 * The RAM tier (issue 15): aligned blocks of hot files held in memory, so that small answers
 * (Safari's `bytes=0-1` probe, a player's first request, short seeks into a popular video) go
 * out from a `Uint8Array` instead of a file slice. Measured with a bare Bun 1.4.5 server (one
 * core, wrk on the other): a file-backed 206 costs Bun an open, fstat, read and close plus
 * thread-pool wake-ups per response, about twice the CPU of the same bytes from memory up to
 * a few hundred KiB. Larger answers, and anything not wholly cached, stay on sendfile.
 *
 * - Keyed by the entity's `memoryKey` (path + strong ETag): bytes never change under a key, so
 *   nothing cached is ever stale; a replaced file has a new tag, hence a new key, and its old
 *   blocks just age out.
 * - The head of a file (where the MP4 `moov` and the first frames are) is loaded the first time
 *   the file is served; other blocks are loaded once a small answer asks for them again
 *   (TinyLFU: a count-min sketch of recent requests, aged by halving, decides admission, and a
 *   newcomer evicts a block only if it is requested more often), so one sequential download
 *   cannot flush the hot set. Eviction is CLOCK (a referenced bit, one store per hit).
 * - Filling is off the request: the answer that misses goes out with sendfile as before, and
 *   the block is read in the background (once, whatever the number of concurrent misses).
 * - Sources: a local file (`TierSource.file`, re-stat'ed after the read), or bytes that are
 *   elsewhere through `TierSource.load` (STORAGE=s3: the object's disk block cache, so the tiers
 *   are RAM, then disk, then the bucket; src/storage/serve.ts). A loaded block may come without
 *   its overlap (the loader does not fetch more than the request did): a hit checks the length
 *   the block really holds.
 *
 * Hand-written: the hit path must cost a Map lookup and a subarray, with no allocation per
 * request beyond the Response; cache libraries key by strings per lookup and count entries,
 * not bytes.
 */
import { stat } from "node:fs/promises";
import { blockOf, checkBlockSize } from "../storage/blocks.ts";
import { hot } from "../metrics/metrics.ts";

/** What the tier needs of an entity (FileEntity and the file part of a ClipEntity). */
export interface TierSource {
  /** path + "\0" + ETag: see makeEntity. */
  memoryKey: string;
  path: string;
  size: number;
  file: Blob;
  /** The file's mtime when the entity was made (0: unknown, only the size is checked). */
  mtimeMs: number;
  /**
   * Where the bytes are when they are not `file` (an object in a bucket: its disk block cache).
   * Unset: `file` is read and the file re-stat'ed. See TierLoader.
   */
  load?: TierLoader;
}

/**
 * Reads the bytes [start, end) of a source whose bytes are not a local file, or fewer: at least
 * [start, least), which the tier needs to hold a block at all (the rest is the overlap into the
 * next block, which a loader may leave out rather than fetch it). Resolves undefined, or
 * rejects, when it cannot; the tier then holds nothing. The bytes must be the ones the source's
 * `memoryKey` (with its strong ETag) names: nothing re-checks them.
 */
export type TierLoader = (start: number, end: number, least: number) => Promise<Uint8Array<ArrayBuffer> | undefined>;

export interface MemoryTierOptions {
  /** Bound on the bytes of all blocks held. */
  maxBytes: number;
  /** Power of two, at least 4 KiB (src/storage/blocks.ts). */
  blockSize?: number;
  /**
   * Each block also holds this many bytes of the next one (at most blockSize), so any answer up
   * to this length is one slice of one block. Default 64 KiB.
   */
  overlapBytes?: number;
  /** Loaded when a file is first served (rounded up to whole blocks). */
  headBytes?: number;
  /** Answers longer than this always go out with sendfile. */
  maxAnswerBytes?: number;
  /** The tier reads at most its size anew in this time (default 60 s; 0: no limit, for tests). */
  turnoverMs?: number;
  /**
   * Frees evicted blocks' bytes, run after evictions (see COLLECTION_QUIET_MS); default a full
   * collection, `Bun.gc(true)`; null: never.
   */
  collect?: (() => void) | null;
}

/**
 * 256 KiB blocks: an answer inside one block is a slice of its Blob (no copy, ~2 µs in-process
 * on the bench machine), one spanning two is copied into a new Blob (~23 µs for 64 KiB there),
 * so blocks several times the typical small answer keep most answers copy-free; smaller blocks
 * would admit hot bytes more finely but copy on nearly every 64 KiB range.
 */
export const DEFAULT_MEMORY_BLOCK_SIZE = 256 * 1024;
export const DEFAULT_HEAD_BYTES = 256 * 1024;
/** Memory stays cheaper than sendfile in CPU per answer up to here (measured; see README). */
export const DEFAULT_MAX_ANSWER_BYTES = 256 * 1024;

/** Block reads in flight at most: fills are background work and must stay small next to serving. */
const MAX_FILLS = 4;
/**
 * A minute: every fill that evicts leaves the evicted block's bytes to the next full GC, which
 * JSC does not hurry for Blob stores it does not count (Bun 1.4.5). With 10 s, random 64 KiB
 * ranges over a file larger than the tier took RSS to 336 MiB for a 64 MiB tier in 30 s.
 */
const DEFAULT_TURNOVER_MS = 60_000;
/**
 * 64 KiB: players' and the bench's typical small range. Without overlap a quarter of random
 * 64 KiB ranges crossed a 256 KiB block boundary and went out by sendfile, and Spool's CPU per
 * hot 64 KiB answer was 2.2x a bare Bun.serve answering the same bytes from one Blob.
 */
const DEFAULT_OVERLAP_BYTES = 64 * 1024;

/**
 * An evicted block's bytes are a Blob store outside the JS heap, freed only when a full
 * collection finds its Blob dead, and Bun 1.4.5 runs none in a process that stops allocating
 * (oven-sh/bun#30261, #28741): after the bench's player starts (100 videos through a 32 MiB
 * tier) an idle Spool held 46 MiB of evicted blocks for good, 162 MiB RSS where 116 remained
 * after `Bun.gc(true)`. So the tier runs that collection itself once it has stopped evicting
 * for COLLECTION_QUIET_MS (one collection for a burst of evictions), or COLLECTION_MAX_WAIT_MS
 * after the first eviction not yet collected, and never more than COLLECTION_SHARE of the time
 * (a full collection held the serving thread 15-70 ms, bench/heap.ts and the players workload).
 * Under steady eviction JSC's own collections still do most of the work, as before.
 */
const COLLECTION_QUIET_MS = 1000;
const COLLECTION_MAX_WAIT_MS = 30_000;
const COLLECTION_SHARE = 0.005;

class Block {
  referenced = false;
  constructor(
    readonly file: TierFile,
    readonly index: number,
    /**
     * A Blob, not a Uint8Array: Bun 1.4.5 copies a typed array into every Response made from it
     * (about half the cost of a 64 KiB answer), while a slice of an in-memory Blob shares its bytes.
     */
    readonly blob: Blob,
    readonly length: number,
    readonly hash: number,
  ) {}
}

class TierFile {
  readonly blocks = new Map<number, Block>();
  readonly loading = new Set<number>();
  constructor(
    readonly key: string,
    readonly hash: number,
  ) {}
}

/** FNV-1a over the key: once per file, not per request. */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function mix(fileHash: number, index: number): number {
  let h = Math.imul(fileHash ^ Math.imul(index, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A count-min sketch of 4-bit-ish counters (saturating at 15), halved every `window` adds. */
class FrequencySketch {
  private readonly table: Uint8Array;
  private readonly mask: number;
  private adds = 0;

  constructor(
    counters: number,
    private readonly window: number,
  ) {
    let size = 1024;
    while (size < counters) size *= 2;
    this.table = new Uint8Array(size);
    this.mask = size - 1;
  }

  add(hash: number): void {
    const t = this.table;
    for (let i = 0, h = hash; i < 4; i++, h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0) {
      const slot = h & this.mask;
      if (t[slot]! < 15) t[slot]!++;
    }
    if (++this.adds >= this.window) {
      this.adds = 0;
      for (let i = 0; i < t.length; i++) t[i] = t[i]! >>> 1;
    }
  }

  estimate(hash: number): number {
    const t = this.table;
    let min = 15;
    for (let i = 0, h = hash; i < 4; i++, h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0) {
      const v = t[h & this.mask]!;
      if (v < min) min = v;
    }
    return min;
  }
}

export class MemoryTier {
  readonly maxBytes: number;
  readonly blockSize: number;
  readonly overlapBytes: number;
  readonly headBytes: number;
  readonly maxAnswerBytes: number;
  readonly turnoverMs: number;
  private readonly files = new Map<string, TierFile>();
  /** Resident blocks, oldest first: the CLOCK's ring (a referenced block moves to the end). */
  private readonly ring = new Set<Block>();
  private readonly sketch: FrequencySketch;
  private held = 0;
  /** Block reads in flight. */
  private fills = 0;
  /** Bytes that may still be filled now (see worthFilling), and when that was computed. */
  private budget: number;
  private budgetAt = performance.now();
  private readonly collect: (() => void) | null;
  /** The timer of the next collection, and the earliest time it may run. */
  private collection: ReturnType<typeof setTimeout> | undefined;
  private nextCollection = 0;
  /** The first and the last eviction since the last collection (performance.now()). */
  private firstEviction = -1;
  private lastEviction = 0;

  constructor(options: MemoryTierOptions) {
    this.maxBytes = options.maxBytes;
    this.blockSize = options.blockSize ?? DEFAULT_MEMORY_BLOCK_SIZE;
    checkBlockSize(this.blockSize);
    this.overlapBytes = Math.min(this.blockSize, options.overlapBytes ?? DEFAULT_OVERLAP_BYTES);
    this.headBytes = options.headBytes ?? DEFAULT_HEAD_BYTES;
    this.maxAnswerBytes = options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
    this.budget = this.maxBytes;
    this.turnoverMs = options.turnoverMs ?? DEFAULT_TURNOVER_MS;
    this.collect = options.collect === undefined ? () => Bun.gc(true) : options.collect;
    const capacity = Math.max(1, Math.floor(this.maxBytes / (this.blockSize + this.overlapBytes)));
    // TinyLFU's sizing: ~8 counters per cached block, aged after 10 × capacity requests (at
    // least 4096, so a small tier still tells a block asked for five times from one asked once).
    this.sketch = new FrequencySketch(Math.max(4096, capacity * 8), Math.max(4096, capacity * 10));
  }

  /** Bytes of blocks held now. */
  get bytes(): number {
    return this.held;
  }

  get blocks(): number {
    return this.ring.size;
  }

  /** Notes that a file is being served (a large answer): its head is loaded the first time. */
  touch(source: TierSource): void {
    if (source.size > 0 && !this.files.has(source.memoryKey)) this.open(source);
  }

  /** An answer from the file's first block made elsewhere (a kept probe): counted as a hit. */
  noteHead(source: TierSource): void {
    const head = this.files.get(source.memoryKey)?.blocks.get(0);
    if (head === undefined) return;
    head.referenced = true;
    this.sketch.add(head.hash);
    hot.memoryHits++;
  }

  private open(source: TierSource): TierFile {
    const file = new TierFile(source.memoryKey, hashString(source.memoryKey));
    this.files.set(file.key, file);
    this.loadHead(source, file);
    return file;
  }

  /**
   * The bytes [start, end] (inclusive) when every block they lie in is held; otherwise
   * undefined, after noting the request (and starting the fills it earns).
   *
   * A range across blocks is answered only with `spanning` (the pull streams, which copy bytes
   * anyway): as a Response body it would be a fresh Blob per answer, malloc'ed outside the JS
   * heap, which Bun 1.4.5's GC does not count, so at 15k answers/s RSS rose to 277 MiB with a
   * 64 MiB tier. Such an answer goes out by sendfile instead.
   */
  read(source: TierSource, start: number, end: number, spanning = false): Blob | undefined {
    const file = this.files.get(source.memoryKey) ?? this.open(source);
    const bs = this.blockSize;
    const first = blockOf(start, bs);
    const a = file.blocks.get(first);
    const offset = start - first * bs;
    // Within what the block holds (its bytes and, usually, the next block's first overlapBytes).
    if (a !== undefined && offset + end - start < a.length) {
      a.referenced = true;
      // Hits count too (a few multiplications): what is asked for often must outweigh a scan.
      this.sketch.add(a.hash);
      hot.memoryHits++;
      // No copy. Bun 1.4.5 still reports the slice's bytes to the GC as if allocated, so hits
      // add Eden collections (oven-sh/bun#41554); a real copy would too, at 8x the cost.
      return a.blob.slice(offset, offset + end - start + 1);
    }
    // Within the overlap of a block not held yet: that block alone will hold the answer. Past
    // what a held block holds (a loaded block may lack its overlap): the next block is needed.
    const last = a === undefined && end < (first + 1) * bs + this.overlapBytes ? first : blockOf(end, bs);
    if (last !== first && spanning) {
      const out = this.gather(file, first, last, start, end);
      if (out !== undefined) {
        hot.memoryHits++;
        return out;
      }
    }
    hot.memoryMisses++;
    for (let index = first; index <= last; index++) {
      const held = file.blocks.get(index);
      if (held !== undefined) {
        held.referenced = true;
        this.sketch.add(held.hash);
        continue;
      }
      const hash = mix(file.hash, index);
      this.sketch.add(hash);
      // Hit twice (within the sketch's window), and asked for more often than the block it
      // would evict: worth a read (insert() weighs it again when the bytes arrive).
      if (this.worthFilling(this.sketch.estimate(hash))) this.fill(source, file, index, hash);
    }
    return undefined;
  }

  /**
   * Without this check, a working set larger than the bound (random seeks over a big file) read
   * a block on nearly every miss only to drop it or another one as soon as it arrived: measured
   * at 1.75x the CPU per 64 KiB range of no tier at all. Ties keep the resident block.
   */
  private worthFilling(estimate: number): boolean {
    if (estimate < 2 || this.fills >= MAX_FILLS) return false;
    // Turnover budget: at most the tier's size read per turnoverMs (see DEFAULT_TURNOVER_MS).
    if (this.turnoverMs <= 0) return this.held + this.blockSize + this.overlapBytes <= this.maxBytes || this.beatsOldest(estimate);
    const now = performance.now();
    this.budget = Math.min(this.maxBytes, this.budget + ((now - this.budgetAt) * this.maxBytes) / this.turnoverMs);
    this.budgetAt = now;
    if (this.budget < this.blockSize) return false;
    if (this.held + this.blockSize + this.overlapBytes <= this.maxBytes) return true;
    return this.beatsOldest(estimate);
  }

  /** By a margin of 2: sketch noise alone must not swap equally popular blocks back and forth. */
  private beatsOldest(estimate: number): boolean {
    const oldest = this.ring.values().next().value;
    return oldest === undefined || estimate > this.sketch.estimate(oldest.hash) + 1;
  }

  /** Several blocks' bytes as one Blob (Bun copies them once), or undefined if one is missing. */
  private gather(file: TierFile, first: number, last: number, start: number, end: number): Blob | undefined {
    for (let index = first; index <= last; index++) if (!file.blocks.has(index)) return undefined;
    const bs = this.blockSize;
    const parts: Blob[] = [];
    for (let index = first; index <= last; index++) {
      const block = file.blocks.get(index)!;
      block.referenced = true;
      this.sketch.add(block.hash);
      const from = index === first ? start - first * bs : 0;
      const to = index === last ? end - last * bs + 1 : bs;
      parts.push(block.blob.slice(from, to));
    }
    return new Blob(parts);
  }

  private loadHead(source: TierSource, file: TierFile): void {
    if (source.size === 0) return;
    const last = blockOf(Math.min(this.headBytes, source.size) - 1, this.blockSize);
    for (let index = 0; index <= last; index++) {
      const hash = mix(file.hash, index);
      // Counted as seen twice: a head is what every player start asks for.
      this.sketch.add(hash);
      this.sketch.add(hash);
      this.fill(source, file, index, hash);
    }
  }

  private fill(source: TierSource, file: TierFile, index: number, hash: number): void {
    if (file.loading.has(index) || this.maxBytes < this.blockSize) return;
    file.loading.add(index);
    this.fills++;
    this.budget -= this.blockSize;
    const start = index * this.blockSize;
    const end = Math.min(start + this.blockSize + this.overlapBytes, source.size);
    const least = Math.min(start + this.blockSize, source.size);
    void this.readBlock(source, start, end, least)
      .then((bytes) => {
        if (bytes !== undefined && this.files.get(file.key) === file) this.insert(new Block(file, index, new Blob([bytes]), bytes.byteLength, hash));
      })
      .catch(() => undefined)
      .finally(() => {
        this.fills--;
        file.loading.delete(index);
        if (file.blocks.size === 0 && file.loading.size === 0 && this.files.get(file.key) === file) this.files.delete(file.key);
      });
  }

  /**
   * The block's bytes, or undefined if the file is no longer the one the entity describes:
   * a short read, or a size or mtime that changed (a file replaced in place under its path
   * must never be cached under the old tag). A loaded block holds [start, least) at least.
   */
  private async readBlock(source: TierSource, start: number, end: number, least: number): Promise<Uint8Array<ArrayBuffer> | undefined> {
    if (source.load !== undefined) {
      const loaded = await source.load(start, end, least);
      if (loaded === undefined || loaded.byteLength < least - start || loaded.byteLength > end - start) return undefined;
      return loaded;
    }
    const bytes = new Uint8Array(await source.file.slice(start, end).arrayBuffer());
    if (bytes.byteLength !== end - start) return undefined;
    const info = await stat(source.path);
    if (info.size !== source.size || (source.mtimeMs > 0 && info.mtimeMs !== source.mtimeMs)) return undefined;
    return bytes;
  }

  private insert(block: Block): void {
    const cost = block.length;
    if (cost > this.maxBytes || block.file.blocks.has(block.index)) return;
    const candidate = this.sketch.estimate(block.hash);
    while (this.held + cost > this.maxBytes) {
      const victim = this.victim();
      if (victim === undefined) return;
      // TinyLFU admission: keep the resident block unless the newcomer is asked for more often.
      if (this.sketch.estimate(victim.hash) >= candidate) {
        victim.referenced = false;
        this.ring.delete(victim);
        this.ring.add(victim);
        return;
      }
      this.evict(victim);
    }
    block.file.blocks.set(block.index, block);
    this.ring.add(block);
    this.held += cost;
    hot.memoryBytes = this.held;
  }

  /** CLOCK: the oldest block not referenced since the hand last passed it. */
  private victim(): Block | undefined {
    for (let turns = this.ring.size * 2; turns > 0; turns--) {
      const oldest = this.ring.values().next().value;
      if (oldest === undefined) return undefined;
      if (!oldest.referenced) return oldest;
      oldest.referenced = false;
      this.ring.delete(oldest);
      this.ring.add(oldest);
    }
    return this.ring.values().next().value;
  }

  private evict(block: Block): void {
    this.ring.delete(block);
    block.file.blocks.delete(block.index);
    this.held -= block.length;
    hot.memoryEvictions++;
    hot.memoryBytes = this.held;
    const file = block.file;
    if (file.blocks.size === 0 && file.loading.size === 0 && this.files.get(file.key) === file) this.files.delete(file.key);
    if (this.collect === null) return;
    const now = performance.now();
    this.lastEviction = now;
    if (this.firstEviction < 0) this.firstEviction = now;
    if (this.collection === undefined) this.scheduleCollection(this.collect, now + COLLECTION_QUIET_MS);
  }

  private scheduleCollection(collect: () => void, at: number): void {
    this.collection = setTimeout(() => {
      this.collection = undefined;
      const now = performance.now();
      const due = Math.max(this.nextCollection, Math.min(this.lastEviction + COLLECTION_QUIET_MS, this.firstEviction + COLLECTION_MAX_WAIT_MS));
      if (now < due) return this.scheduleCollection(collect, due);
      this.firstEviction = -1;
      hot.memoryCollections++;
      collect();
      const ended = performance.now();
      this.nextCollection = ended + (ended - now) / COLLECTION_SHARE;
    }, Math.max(0, at - performance.now()));
    this.collection.unref();
  }

  /** Drops every block (tests; a process that must give memory back). */
  clear(): void {
    for (const block of [...this.ring]) this.evict(block);
    this.files.clear();
  }

  /** Resolves when no fill is in flight (tests, and the bench's warm-up). */
  async settled(): Promise<void> {
    while ([...this.files.values()].some((f) => f.loading.size > 0)) await Bun.sleep(1);
  }
}
