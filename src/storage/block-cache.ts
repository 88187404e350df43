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
 * Sharing: several processes (WORKERS, servers on one machine) may use one CACHE_DIR.
 * - Two processes filling the same block both write their own temporary file and rename it
 *   over the same name: the bytes are identical, either rename wins, a reader keeps the inode
 *   it opened. Within one process, concurrent misses of one block fetch it once (singleflight).
 * - LRU: each process keeps the blocks it knows in use order (a Map), and stamps a block's
 *   mtime when it uses it (at most every `touchIntervalMs`), so the directory holds everyone's
 *   use times. Before a new block is renamed into place the filler makes room: when its count
 *   says the cache would pass CACHE_MAX_BYTES it rescans the directory (sizes and mtimes of
 *   every process's blocks, at most every `rescanIntervalMs`) and unlinks the least recently
 *   used blocks down to 90%. One process never exceeds the bound; with several filling at
 *   once, the directory can hold more by at most what the others filled since the last scan.
 * - Unlinking a block another process is sending is safe on Linux (it keeps the open inode);
 *   a block evicted between `pieces()` and its open is refetched by `stream()`.
 */
import { createHash } from "node:crypto";
import { mkdir, open, readdir, rename, rm, stat, unlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { blockLength, blockSpan, checkBlockSize, DEFAULT_BLOCK_SIZE, sliceRange, type BlockSlice, type Span } from "./blocks.ts";

export { DEFAULT_BLOCK_SIZE };
import { StorageUnavailable, type ObjectStore } from "./object-store.ts";

/** A part of a range that is in a cache file: send `length` bytes at `offset` of `path`. */
export interface Piece {
  path: string;
  offset: number;
  length: number;
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
  /** How often a block in use gets its mtime refreshed (the cross-process LRU clock). Default 10 s. */
  touchIntervalMs?: number;
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
  fills: number;
  evictions: number;
}

const LOW_WATER = 0.9;
const NAME = /^[0-9a-f]{40}\.\d+k\.\d+$/;

interface Entry {
  size: number;
  /** Last use, ms since the epoch (ours, or the file's mtime when another process used it). */
  used: number;
  /** When we last stamped the file's mtime. */
  touched: number;
}

export class BlockCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly blockSize: number;
  private readonly store: ObjectStore;
  private readonly tmpDir: string;
  private readonly readAhead: number;
  private readonly touchIntervalMs: number;
  private readonly rescanIntervalMs: number;
  private readonly staleTempMs: number;
  /** Known blocks in least- to most-recently-used order. */
  private readonly index = new Map<string, Entry>();
  private total = 0;
  /** Bytes of fills that made room and are being renamed into place. */
  private reserved = 0;
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly madeDirs = new Set<string>();
  private roomLock: Promise<void> = Promise.resolve();
  private lastScan = 0;
  private readonly counters = { hits: 0, misses: 0, fills: 0, evictions: 0 };

  constructor(options: BlockCacheOptions) {
    this.blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    checkBlockSize(this.blockSize);
    if (options.maxBytes < 4 * this.blockSize) {
      throw new RangeError(`CACHE_MAX_BYTES must hold at least 4 blocks (${4 * this.blockSize} bytes), got ${options.maxBytes}`);
    }
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.store = options.store;
    this.tmpDir = join(this.dir, "tmp");
    this.readAhead = options.readAhead ?? 1;
    this.touchIntervalMs = options.touchIntervalMs ?? 10_000;
    this.rescanIntervalMs = options.rescanIntervalMs ?? 5_000;
    // A live fill keeps writing (each chunk within the store's deadline), so its file stays fresh.
    this.staleTempMs = options.staleTempMs ?? 10 * 60_000;
  }

  /** Creates the directory, removes temporary files of dead fillers, and learns what is cached. */
  async init(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
    await this.scan();
  }

  stats(): BlockCacheStats {
    return { blocks: this.index.size, bytes: this.total, ...this.counters };
  }

  /** The file of block `index` of an object (whether or not it is cached). */
  blockPath(object: CachedObject, index: number): string {
    const digest = createHash("sha1").update(`${object.key}\n${object.identity}`).digest("hex");
    return join(this.dir, digest.slice(0, 2), `${digest}.${this.blockSize / 1024}k.${index}`);
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

  /** The pieces of a range in order, each cached just before it is yielded, `readAhead` blocks ahead. */
  async *iterate(object: CachedObject, range: Span): AsyncGenerator<Piece> {
    const slices = sliceRange(range, this.blockSize, object.size);
    const pending: Promise<Piece>[] = [];
    let next = 0;
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
   * `Bun.file(piece.path).slice(...)`, with sendfile). Errors (StorageUnavailable) instead of
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
    const file = Bun.file(piece.path);
    if (await file.exists()) return file.slice(piece.offset, piece.offset + piece.length).stream();
    this.forget(piece.path);
    const index = Number(piece.path.slice(piece.path.lastIndexOf(".") + 1));
    const again = await this.piece(object, { index, offset: piece.offset, length: piece.length });
    return Bun.file(again.path).slice(again.offset, again.offset + again.length).stream();
  }

  private async piece(object: CachedObject, slice: BlockSlice): Promise<Piece> {
    const path = this.blockPath(object, slice.index);
    await this.ensure(object, slice.index, path);
    return { path, offset: slice.offset, length: slice.length };
  }

  /** Makes sure block `index` is a complete file at `path`. */
  private async ensure(object: CachedObject, index: number, path: string): Promise<void> {
    const entry = this.index.get(path);
    const now = Date.now();
    if (entry) {
      // A hit: most recently used now. Stamping the mtime (the other processes' LRU clock) also
      // notices a block another process evicted; between stamps the index is trusted.
      this.index.delete(path);
      this.index.set(path, entry);
      entry.used = now;
      if (now - entry.touched < this.touchIntervalMs) {
        this.counters.hits++;
        return;
      }
      entry.touched = now;
      const seconds = now / 1000;
      if (await utimes(path, seconds, seconds).then(() => true, () => false)) {
        this.counters.hits++;
        return;
      }
      this.forget(path);
    }
    const running = this.inflight.get(path);
    if (running) {
      this.counters.hits++;
      return running;
    }
    const expected = blockLength(index, this.blockSize, object.size);
    const filling = this.adoptOrFill(object, index, path, expected).finally(() => this.inflight.delete(path));
    this.inflight.set(path, filling);
    return filling;
  }

  /** Another process may have cached the block already: adopt it; else fetch it. */
  private async adoptOrFill(object: CachedObject, index: number, path: string, expected: number): Promise<void> {
    const found = await stat(path).catch(() => null);
    if (found?.size === expected) {
      this.counters.hits++;
      this.record(path, expected, Date.now());
      return;
    }
    this.counters.misses++;
    await this.fill(object, index, path, expected);
  }

  private async fill(object: CachedObject, index: number, path: string, expected: number): Promise<void> {
    const span = blockSpan(index, this.blockSize, object.size);
    const temp = join(this.tmpDir, `${process.pid}.${crypto.randomUUID()}`);
    let reserved = 0;
    try {
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
      reserved = expected;
      this.reserved += expected;
      await this.makeRoom();
      const dir = join(path, "..");
      if (!this.madeDirs.has(dir)) {
        await mkdir(dir, { recursive: true });
        this.madeDirs.add(dir);
      }
      await rename(temp, path);
      this.counters.fills++;
      this.record(path, expected, Date.now());
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    } finally {
      this.reserved -= reserved;
    }
  }

  private record(path: string, size: number, used: number): void {
    const old = this.index.get(path);
    if (old) {
      this.total -= old.size;
      this.index.delete(path);
    }
    this.index.set(path, { size, used, touched: used });
    this.total += size;
  }

  private forget(path: string): void {
    const entry = this.index.get(path);
    if (!entry) return;
    this.index.delete(path);
    this.total -= entry.size;
  }

  /** Evicts least recently used blocks until the filled-but-not-yet-renamed blocks fit. One at a time per process. */
  private makeRoom(): Promise<void> {
    const run = this.roomLock.then(async () => {
      if (this.total + this.reserved <= this.maxBytes) return;
      if (Date.now() - this.lastScan >= this.rescanIntervalMs) await this.scan();
      const target = Math.floor(this.maxBytes * LOW_WATER);
      for (const [path, entry] of this.index) {
        if (this.total + this.reserved <= target) break;
        if (this.inflight.has(path)) continue;
        this.forget(path);
        await unlink(path).catch(() => {});
        this.counters.evictions++;
      }
    });
    this.roomLock = run.catch(() => {});
    return run;
  }

  /**
   * Rebuilds the index from the directory: every process's blocks with their sizes and
   * mtimes (use times), ordered least recently used first; drops dead fillers' temp files.
   */
  async scan(): Promise<void> {
    this.lastScan = Date.now();
    const found: [string, Entry][] = [];
    const subdirs = await readdir(this.dir, { withFileTypes: true }).catch(() => []);
    for (const sub of subdirs) {
      if (!sub.isDirectory() || sub.name === "tmp") continue;
      const names = await readdir(join(this.dir, sub.name)).catch(() => [] as string[]);
      for (const name of names) {
        if (!NAME.test(name)) continue;
        const path = join(this.dir, sub.name, name);
        const info = await stat(path).catch(() => null);
        if (!info) continue;
        const mine = this.index.get(path);
        const used = Math.max(info.mtimeMs, mine?.used ?? 0);
        found.push([path, { size: info.size, used, touched: mine?.touched ?? info.mtimeMs }]);
      }
    }
    found.sort((a, b) => a[1].used - b[1].used);
    this.index.clear();
    this.total = 0;
    for (const [path, entry] of found) {
      this.index.set(path, entry);
      this.total += entry.size;
    }
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const path = join(this.tmpDir, name);
      const info = await stat(path).catch(() => null);
      if (info && this.lastScan - info.mtimeMs >= this.staleTempMs) await rm(path, { force: true });
    }
  }
}
