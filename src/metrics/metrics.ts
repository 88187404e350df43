/**
 * Prometheus metrics (prom-client), served at GET /metrics (API key required).
 *
 * The stream hot path pays one array increment per response (`hot.stream[status]++`) and the
 * file engine one addition per body (`hot.fileBytes += n`); prom-client reads these plain
 * numbers at scrape time. Everything else (Elysia routes, uploads, jobs) uses prom-client's
 * own counters and histograms, whose label lookups would cost more than the stream can afford.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "./prom-client.ts";

/** Status code → count, for the native stream route (indexes 100-599). */
const STREAM_STATUSES = new Float64Array(600);

/** The numbers the hot path bumps: no labels, no function calls. */
export const hot = {
  stream: STREAM_STATUSES,
  /** Body bytes the file engine answered (the length of each range; 0 for HEAD and 304). */
  fileBytes: 0,
  catalogHits: 0,
  catalogMisses: 0,
  tokenCacheHits: 0,
  tokenVerifications: 0,
  /** The RAM tier (src/files/memory-tier.ts): answers from memory, small answers that were not, evicted blocks, bytes held. */
  memoryHits: 0,
  memoryMisses: 0,
  memoryEvictions: 0,
  memoryBytes: 0,
  /** Collections the RAM tier asked for to free evicted blocks (src/files/memory-tier.ts). */
  memoryCollections: 0,
  /**
   * The disk block cache in front of the bucket (STORAGE=s3, src/storage/block-cache.ts): block
   * lookups found on disk (or being fetched), lookups that fetched the block, and those fetches
   * (GETs of one block from the bucket). An answer the RAM tier gives looks nothing up here.
   */
  diskHits: 0,
  diskMisses: 0,
  bucketReads: 0,
  /** Clips (src/files/clip.ts): requests whose header was cached (or being made) and those that made it; `moov`s found parsed and those read and parsed. */
  clipHeaderHits: 0,
  clipHeaderMisses: 0,
  moovHits: 0,
  moovMisses: 0,
};

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "spool_" });
// A WORKERS cluster's scrape adds up each process's samples (prom-client's default, right for
// counts and bytes); a limit is not a count: two processes under a 20,000-descriptor limit do
// not have 40,000. (prom-client 15 reads `aggregator` off the metric when it aggregates.)
(registry.getSingleMetric("spool_process_max_fds") as { aggregator?: string } | undefined)!.aggregator = "max";

new Counter({
  name: "spool_stream_responses_total",
  help: "Answers of the stream route (GET/HEAD /api/stream/:id), by status",
  labelNames: ["status"],
  registers: [registry],
  collect() {
    this.reset();
    for (let status = 100; status < 600; status++) if (STREAM_STATUSES[status]) this.inc({ status: String(status) }, STREAM_STATUSES[status]);
  },
});

new Counter({
  name: "spool_file_response_bytes_total",
  help: "Body bytes answered by the file engine (stream, HLS, thumbnails, static; each range counted by its length)",
  registers: [registry],
  collect() {
    this.reset();
    this.inc(hot.fileBytes);
  },
});

new Counter({
  name: "spool_cache_lookups_total",
  help: "Lookups in Spool's caches, by cache and result (hit ratio = hit / (hit + miss)); with STORAGE=s3 the tiers are memory_tier, then disk_blocks (a miss is a block GET from the bucket)",
  labelNames: ["cache", "result"],
  registers: [registry],
  collect() {
    this.reset();
    this.inc({ cache: "stream_catalog", result: "hit" }, hot.catalogHits);
    this.inc({ cache: "stream_catalog", result: "miss" }, hot.catalogMisses);
    this.inc({ cache: "playback_tokens", result: "hit" }, hot.tokenCacheHits);
    this.inc({ cache: "playback_tokens", result: "miss" }, hot.tokenVerifications);
    this.inc({ cache: "memory_tier", result: "hit" }, hot.memoryHits);
    this.inc({ cache: "memory_tier", result: "miss" }, hot.memoryMisses);
    this.inc({ cache: "disk_blocks", result: "hit" }, hot.diskHits);
    this.inc({ cache: "disk_blocks", result: "miss" }, hot.diskMisses);
    this.inc({ cache: "clip_headers", result: "hit" }, hot.clipHeaderHits);
    this.inc({ cache: "clip_headers", result: "miss" }, hot.clipHeaderMisses);
    this.inc({ cache: "clip_moovs", result: "hit" }, hot.moovHits);
    this.inc({ cache: "clip_moovs", result: "miss" }, hot.moovMisses);
  },
});

let clipHeaderBytes: () => number = () => 0;

/** What the stream route's clip header cache holds, read at scrape time. */
export function clipHeaderCache(read: () => number): void {
  clipHeaderBytes = read;
}

new Gauge({
  name: "spool_clip_header_cache_bytes",
  help: "Bytes of parsed `moov`s and clip headers the stream route holds (at most CLIP_HEADER_CACHE_BYTES per process)",
  registers: [registry],
  collect() {
    this.set(clipHeaderBytes());
  },
});

new Counter({
  name: "spool_bucket_block_reads_total",
  help: "GETs of one block (CACHE_DIR's 2 MiB) from the bucket by the disk block cache (STORAGE=s3), failed ones included",
  registers: [registry],
  collect() {
    this.reset();
    this.inc(hot.bucketReads);
  },
});

new Counter({
  name: "spool_memory_tier_evictions_total",
  help: "Blocks the RAM tier (MEMORY_CACHE_BYTES) evicted to make room",
  registers: [registry],
  collect() {
    this.reset();
    this.inc(hot.memoryEvictions);
  },
});

new Counter({
  name: "spool_memory_tier_collections_total",
  help: "Full garbage collections the RAM tier ran to free the bytes of evicted blocks (once it has not evicted for a second, or 30 s after an eviction; at most 0.5% of the process's time)",
  registers: [registry],
  collect() {
    this.reset();
    this.inc(hot.memoryCollections);
  },
});

new Gauge({
  name: "spool_memory_tier_bytes",
  help: "Bytes of file blocks the RAM tier holds (at most MEMORY_CACHE_BYTES per process)",
  registers: [registry],
  collect() {
    this.set(hot.memoryBytes);
  },
});

export const httpRequests = new Counter({
  name: "spool_http_requests_total",
  help: "Answers of every route but the stream, by route template, method and status",
  labelNames: ["route", "method", "status"],
  registers: [registry],
});

export const httpDuration = new Histogram({
  name: "spool_http_request_duration_seconds",
  help: "Time to the response of every route but the stream (an upload counts until its answer)",
  labelNames: ["route", "method"],
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
  registers: [registry],
});

export const uploadBytes = new Counter({
  name: "spool_upload_bytes_total",
  help: "Bytes of media received, by way in (multipart, tus)",
  labelNames: ["via"],
  registers: [registry],
});

export const jobDuration = new Histogram({
  name: "spool_job_duration_seconds",
  help: "How long background jobs ran, by kind (ingest: probe, faststart, poster; transcode: the HLS ladder) and outcome",
  labelNames: ["kind", "outcome"],
  buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800, 7200],
  registers: [registry],
});

const readers = new Map<string, () => number | Promise<number>>();

/**
 * A gauge read from the application at scrape time (queue depths, in-flight requests). Metrics
 * are per process: a second server in the same process (tests) replaces the reader. `shared`:
 * every process reads the same value (the database's queue), so a cluster's scrape takes the
 * largest reading instead of adding it up once per process.
 */
export function gauge(name: string, help: string, read: () => number | Promise<number>, { shared = false } = {}): void {
  if (!readers.has(name)) {
    new Gauge({
      name,
      help,
      registers: [registry],
      ...(shared ? { aggregator: "max" as const } : {}),
      async collect() {
        // A reading that fails (the queue's database in an outage) is NaN, Prometheus's "no
        // value": the rest of the scrape, which matters most then, still answers.
        try {
          this.set(await readers.get(name)!());
        } catch {
          this.set(Number.NaN);
        }
      },
    });
  }
  readers.set(name, read);
}

/** What a disk cache (src/lib/disk-lru.ts) reports at scrape time. */
export interface DiskCacheStats {
  files: number;
  bytes: number;
  evictions: number;
}

const diskCaches = new Map<string, () => DiskCacheStats>();

/**
 * A disk cache on /metrics, by name: `blocks` (STORAGE=s3's block cache, CACHE_DIR) and `clips`
 * (kept clips, CLIP_CACHE_BYTES). A directory is shared by the processes of a DATA_DIR, each of
 * which counts it from its own view (its writes, and rescans when it needs room), so a cluster's
 * sum takes the largest view rather than adding the same files up per process.
 */
export function diskCache(name: string, read: () => DiskCacheStats): void {
  diskCaches.set(name, read);
}

new Gauge({
  name: "spool_disk_cache_bytes",
  help: "Bytes in a disk cache (cache=blocks: the bucket's block cache; cache=clips: kept clips), as this process last counted the shared directory",
  labelNames: ["cache"],
  registers: [registry],
  aggregator: "max",
  collect() {
    this.reset();
    for (const [cache, read] of diskCaches) this.set({ cache }, read().bytes);
  },
});

new Gauge({
  name: "spool_disk_cache_files",
  help: "Files in a disk cache (blocks, kept clips), as this process last counted the shared directory",
  labelNames: ["cache"],
  registers: [registry],
  aggregator: "max",
  collect() {
    this.reset();
    for (const [cache, read] of diskCaches) this.set({ cache }, read().files);
  },
});

new Counter({
  name: "spool_disk_cache_evictions_total",
  help: "Files this process evicted from a disk cache to make room (blocks, kept clips)",
  labelNames: ["cache"],
  registers: [registry],
  collect() {
    this.reset();
    for (const [cache, read] of diskCaches) this.inc({ cache }, read().evictions);
  },
});
