/**
 * The local read-through cache in front of the object store (issue 12): a video that is hot
 * costs what it costs from disk, and a cached range goes out with sendfile like a local file.
 *
 * Objects are cut into aligned blocks (blocks.ts, as nginx's slice module does). A range maps
 * to the blocks that cover it; each missing block is fetched from the store whole, written to
 * a temporary file, size-checked, fsynced and renamed into place, so a block file is either
 * complete or absent, whatever crashes. Callers get Pieces: (file, offset, length) triples,
 * which the stream route sends with `Bun.file(path).slice(offset, offset + length)`.
 *
 * Hand-written because no library does this for Bun with these guarantees: nginx's
 * proxy_cache_slice is the model, but it sits in another process; npm caches are in-memory or
 * whole-object, none shares a directory between processes with atomic blocks.
 *
 * Identity: blocks are named by a digest of (object key, identity), where identity is the
 * video's content hash (its strong ETag): bytes never change under it, so a block is never
 * stale and nothing needs invalidating; a replaced video has a new identity, new names, and the
 * old blocks age out.
 *
 * Sharing: several processes (WORKERS, servers on one machine) may use one CACHE_DIR. The
 * directory itself (temporary files, rename into place, the LRU clock and eviction) is a
 * DiskLru (src/lib/disk-lru.ts), shared with the materialised clips.
 * - Two processes filling the same block both write their own temporary file and rename it
 *   over the same name: the bytes are identical, either rename wins, a reader keeps the inode
 *   it opened. Within one process, concurrent misses of one block fetch it once (singleflight).
 * - LRU: each process keeps the blocks it knows in use order (a Map), and stamps a block's
 *   mtime when it uses it (at most every `touchIntervalMs`), so the directory holds everyone's
 *   use times. Before a block is fetched the filler reserves its room (DiskLru.reserve): when
 *   its count (blocks and the temporary files of fills in flight) says the cache would pass
 *   CACHE_MAX_BYTES it rescans the directory (sizes and mtimes of every process's blocks, at
 *   most every `rescanIntervalMs`) and unlinks the least recently used blocks down to 90%.
 * - The bound: one process's blocks and temporary files never pass CACHE_MAX_BYTES. When no room
 *   can be made (every block was used in the last `minAgeMs`), the block is fetched into memory
 *   instead, handed to the callers that asked for it (a Piece with `bytes`) and not kept: a
 *   cache too small for its load costs bucket reads, never more disk. With several processes
 *   filling at once, the directory can hold more by at most what the others filled since the
 *   last scan.
 * - A block handed out by name is not evicted before it is read (issue: valid ranges got 404
 *   under pressure): the stream route gives Bun `Bun.file(block).slice()`, which Bun opens only
 *   after the handler returned, with no callback when it has. Nothing in this process or another
 *   one evicts a block used in the last `minAgeMs` (3 touch intervals, 6 s by default: see
 *   DiskLru), which is far longer than Bun takes to open a body it was handed; once open,
 *   unlinking is harmless (Linux keeps the inode). Chosen over the alternatives because it keeps
 *   a hot range a plain sendfile of the block file at no extra cost per answer: a descriptor
 *   opened per answer would have to be closed by us, and nothing says when Bun is done with it
 *   (a closed number reused by another file would send that file's bytes); reading answers into
 *   memory costs a copy and RAM per slow reader; a retry after Bun's ENOENT cannot be done
 *   from here (it is Bun's error, after the status). Streamed pieces (`stream`, the stream
 *   route's multi-block answers) are read by this process, which refetches a block that vanished.
 * - Memory: a block not kept is held only while an answer needs it: one per single-block answer,
 *   up to `readAhead + 1` per streamed answer; only when the cache has no room at all.
 */
import { createHash } from "node:crypto";
import { open, rm, stat } from "node:fs/promises";
import { DiskLru } from "../lib/disk-lru.ts";
import { blockLength, blockSpan, checkBlockSize, DEFAULT_BLOCK_SIZE, sliceRange, type BlockSlice, type Span } from "./blocks.ts";

export { DEFAULT_BLOCK_SIZE };
import { StorageUnavailable, type ObjectStore } from "./object-store.ts";
import { hot } from "../metrics/metrics.ts";

/**
 * A part of a range within one block: send `length` bytes at `offset` of the block file `path`,
 * or, when the block could not be kept (no room, see the module comment), of `bytes` (the whole
 * block, in memory: `path` then names no file).
 */
export interface Piece {
  path: string;
  offset: number;
  length: number;
  bytes?: Uint8Array<ArrayBuffer>;
}

/** What is being read: the key in the store, its immutable identity, its size. */
export interface CachedObject {
  key: string;
  /** The content hash / strong ETag of the bytes: blocks are shared only under the same one. */
  identity: string;
  size: number;
}

export interface BlockCacheOptions {
  dir: string;
  maxBytes: number;
  store: ObjectStore;
  /** Default DEFAULT_BLOCK_SIZE. A power of two >= 4 KiB. */
  blockSize?: number;
  /** Blocks `iterate`/`stream` fetch ahead of the one being sent. Default 1. */
  readAhead?: number;
  /** How often a block in use gets its mtime refreshed (the cross-process LRU clock). Default 2 s. */
  touchIntervalMs?: number;
  /**
   * Blocks used (by any process) more recently than this are never evicted, so that a block
   * handed to a response is still there when Bun opens it. Default 3 touch intervals (0 with
   * `touchIntervalMs: 0`: pure LRU, for tests that drive the cache one call at a time).
   */
  minAgeMs?: number;
  /** How stale this process's view of the directory may be when it needs room. Default 5 s. */
  rescanIntervalMs?: number;
  /** Temporary files untouched this long were left by a dead filler and are removed on scans. Default 10 min. */
  staleTempMs?: number;
}

export interface BlockCacheStats {
  blocks: number;
  bytes: number;
  hits: number;
  misses: number;
  /** Blocks fetched and kept as files. */
  fills: number;
  /** Blocks fetched but not kept (no room under CACHE_MAX_BYTES): served from memory. */
  unkept: number;
  evictions: number;
}

const NAME = /^[0-9a-f]{40}\.\d+k\.\d+$/;

export class BlockCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly blockSize: number;
  private readonly store: ObjectStore;
  private readonly readAhead: number;
  /** The directory: known blocks in use order, the cross-process LRU clock, eviction. */
  private readonly lru: DiskLru;
  /** Fetches in flight (singleflight): undefined when the block is now a file, its bytes when it was not kept. */
  private readonly inflight = new Map<string, Promise<Uint8Array<ArrayBuffer> | undefined>>();
  private readonly counters = { hits: 0, misses: 0, fills: 0, unkept: 0 };

  constructor(options: BlockCacheOptions) {
    this.blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    checkBlockSize(this.blockSize);
    if (options.maxBytes < 4 * this.blockSize) {
      throw new RangeError(`CACHE_MAX_BYTES must hold at least 4 blocks (${4 * this.blockSize} bytes), got ${options.maxBytes}`);
    }
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.store = options.store;
    this.readAhead = options.readAhead ?? 1;
    const touchIntervalMs = options.touchIntervalMs ?? 2_000;
    // A live fill keeps writing (each chunk within the store's deadline), so its temporary file stays fresh.
    this.lru = new DiskLru({
      dir: this.dir,
      maxBytes: this.maxBytes,
      name: NAME,
      touchIntervalMs,
      minAgeMs: options.minAgeMs ?? 3 * touchIntervalMs,
      rescanIntervalMs: options.rescanIntervalMs,
      staleTempMs: options.staleTempMs,
    });
    this.lru.busy = (path) => this.inflight.has(path);
  }

  /** Creates the directory, removes temporary files of dead fillers, and learns what is cached. */
  init(): Promise<void> {
    return this.lru.init();
  }

  stats(): BlockCacheStats {
    return { blocks: this.lru.files, bytes: this.lru.bytes, ...this.counters, evictions: this.lru.evictions };
  }

  /** The file of block `index` of an object (whether or not it is cached). */
  blockPath(object: CachedObject, index: number): string {
    const digest = createHash("sha1").update(`${object.key}\n${object.identity}`).digest("hex");
    return this.lru.pathFor(digest, `${digest}.${this.blockSize / 1024}k.${index}`);
  }

  /**
   * Whether block `index` is cached as far as this process knows, or being fetched: the RAM
   * tier reads ahead (a block's overlap) only from such blocks, never by a fetch of its own.
   */
  holds(object: CachedObject, index: number): boolean {
    const path = this.blockPath(object, index);
    return this.lru.has(path) || this.inflight.has(path);
  }

  /**
   * The pieces of an inclusive range, every block cached first (fetched from the store when
   * missing). For a few blocks (seeks, probes); long ranges should use `iterate` or `stream`,
   * which fetch as they go.
   */
  async pieces(object: CachedObject, range: Span): Promise<Piece[]> {
    const slices = sliceRange(range, this.blockSize, object.size);
    const pieces: Piece[] = new Array(slices.length);
    let next = 0;
    const lane = async () => {
      while (next < slices.length) {
        const i = next++;
        pieces[i] = await this.piece(object, slices[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, slices.length) }, lane));
    return pieces;
  }

  /**
   * The pieces of a range in order, each cached just before it is yielded, `readAhead` blocks
   * ahead. `first`: the range's first piece, already fetched (`pieces` of its first block).
   */
  async *iterate(object: CachedObject, range: Span, first?: Piece): AsyncGenerator<Piece> {
    const slices = sliceRange(range, this.blockSize, object.size);
    const pending: Promise<Piece>[] = [];
    let next = 0;
    if (first !== undefined && slices.length > 0 && first.offset === slices[0]!.offset && first.length === slices[0]!.length) {
      pending.push(Promise.resolve(first));
      next = 1;
    }
    const launch = () => {
      while (pending.length <= this.readAhead && next < slices.length) {
        const fetching = this.piece(object, slices[next++]!);
        fetching.catch(() => {}); // a read-ahead nobody waits for any more must not be unhandled
        pending.push(fetching);
      }
    };
    launch();
    while (pending.length > 0) {
      const piece = pending.shift()!;
      launch();
      yield await piece;
    }
  }

  /**
   * The bytes of a range as a stream read from the cache files, filling blocks as it goes:
   * for answers that span blocks (a single-piece answer is better sent as
   * `Bun.file(piece.path).slice(...)`, with sendfile, or from `piece.bytes` when not kept). Errors (StorageUnavailable) instead of
   * ending short.
   */
  stream(object: CachedObject, range: Span): ReadableStream<Uint8Array> {
    const pieces = this.iterate(object, range);
    let current: ReadableStreamDefaultReader<Uint8Array> | null = null;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (out) => {
          for (;;) {
            if (!current) {
              const next = await pieces.next();
              if (next.done) return out.close();
              current = (await this.openPiece(object, next.value)).getReader();
            }
            const chunk = await current.read();
            if (!chunk.done) return out.enqueue(chunk.value);
            current = null;
          }
        },
        cancel: async () => {
          await current?.cancel().catch(() => {});
          await pieces.return(undefined);
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** A piece's bytes; if another process evicted the block since, it is fetched again. */
  private async openPiece(object: CachedObject, piece: Piece): Promise<ReadableStream<Uint8Array>> {
    if (piece.bytes) return bytesStream(piece.bytes.subarray(piece.offset, piece.offset + piece.length));
    const file = Bun.file(piece.path);
    if (await file.exists()) return file.slice(piece.offset, piece.offset + piece.length).stream();
    this.lru.forget(piece.path);
    const index = Number(piece.path.slice(piece.path.lastIndexOf(".") + 1));
    const again = await this.piece(object, { index, offset: piece.offset, length: piece.length });
    if (again.bytes) return bytesStream(again.bytes.subarray(again.offset, again.offset + again.length));
    return Bun.file(again.path).slice(again.offset, again.offset + again.length).stream();
  }

  private async piece(object: CachedObject, slice: BlockSlice): Promise<Piece> {
    const path = this.blockPath(object, slice.index);
    const bytes = await this.ensure(object, slice.index, path);
    return bytes === undefined ? { path, offset: slice.offset, length: slice.length } : { path, offset: slice.offset, length: slice.length, bytes };
  }

  /** Makes sure block `index` is a complete file at `path` (undefined), or gives its bytes when it could not be kept. */
  private async ensure(object: CachedObject, index: number, path: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
    // A hit: most recently used now. Stamping the mtime (the other processes' LRU clock) also
    // notices a block another process evicted; between stamps the index is trusted.
    if (this.lru.has(path) && (await this.lru.use(path))) {
      this.counters.hits++;
      hot.diskHits++;
      return undefined;
    }
    const running = this.inflight.get(path);
    if (running) {
      this.counters.hits++;
      hot.diskHits++;
      return running;
    }
    const expected = blockLength(index, this.blockSize, object.size);
    const filling = this.adoptOrFill(object, index, path, expected).finally(() => this.inflight.delete(path));
    this.inflight.set(path, filling);
    return filling;
  }

  /** Another process may have cached the block already: adopt it; else fetch it. */
  private async adoptOrFill(object: CachedObject, index: number, path: string, expected: number): Promise<Uint8Array<ArrayBuffer> | undefined> {
    // This process may be evicting it right now: a stat before the unlink is done would adopt it.
    await this.lru.unlinked(path);
    const found = await stat(path).catch(() => null);
    if (found?.size === expected) {
      // Stamped before it is handed out (its mtime may be old: another process could evict it).
      this.lru.adopt(path, expected, found.mtimeMs);
      if (await this.lru.use(path)) {
        this.counters.hits++;
        hot.diskHits++;
        return undefined;
      }
    }
    this.counters.misses++;
    hot.diskMisses++;
    return this.fill(object, index, path, expected);
  }

  /**
   * Fetches a block. With room reserved under the bound (counting its temporary file), it is
   * written, checked, fsynced and renamed into place; without (every block too recently used to
   * evict), it is fetched into memory and given to the callers, not kept (see the module comment).
   */
  private async fill(object: CachedObject, index: number, path: string, expected: number): Promise<Uint8Array<ArrayBuffer> | undefined> {
    const span = blockSpan(index, this.blockSize, object.size);
    if (!(await this.lru.reserve(expected))) {
      hot.bucketReads++;
      const body = await this.store.read(object.key, span, { size: object.size });
      const bytes = new Uint8Array(expected);
      let written = 0;
      for await (const chunk of body.stream) {
        if (written + chunk.byteLength > expected) {
          written += chunk.byteLength;
          break;
        }
        bytes.set(chunk, written);
        written += chunk.byteLength;
      }
      if (written !== expected) {
        throw new StorageUnavailable(`object storage gave ${written} bytes of block ${index} of ${object.key}, expected ${expected}`, "read");
      }
      this.counters.unkept++;
      return bytes;
    }
    const temp = this.lru.tempPath();
    try {
      hot.bucketReads++;
      const body = await this.store.read(object.key, span, { size: object.size });
      const file = await open(temp, "w");
      let written = 0;
      try {
        for await (const chunk of body.stream) {
          written += chunk.byteLength;
          if (written > expected) break;
          await file.write(chunk);
        }
        if (written !== expected) {
          throw new StorageUnavailable(`object storage gave ${written} bytes of block ${index} of ${object.key}, expected ${expected}`, "read");
        }
        // On disk before it is visible: a power cut must not leave a named block with holes.
        await file.sync();
      } finally {
        await file.close();
      }
    } catch (error) {
      this.lru.release(expected);
      await rm(temp, { force: true });
      throw error;
    }
    await this.lru.place(temp, path, expected);
    this.counters.fills++;
    return undefined;
  }

  /**
   * Rebuilds the index from the directory: every process's blocks with their sizes and
   * mtimes (use times), ordered least recently used first; drops dead fillers' temp files.
   */
  scan(): Promise<void> {
    return this.lru.scan();
  }
}

/** Bytes in memory as a one-chunk stream. */
function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(out) {
      out.enqueue(bytes);
      out.close();
    },
  });
}
