/**
 * ObjectStore in an S3-compatible bucket (AWS S3, R2, MinIO, Ceph RGW) through Bun.S3Client.
 *
 * What goes through which Bun API, and why (Bun 1.4.5):
 * - Puts, deletes and lists use Bun.S3Client (it signs, and `write` of a Bun.file larger than
 *   `partSize` is a multipart upload with parallel, retried parts).
 * - Reads and HEADs use `fetch` on a URL presigned by the same client. S3Client calls take no
 *   AbortSignal and have no timeout in 1.4.5 (a bucket that accepts the connection and never
 *   answers keeps `stat()` pending for minutes; oven-sh/bun#34990 proposes a `timeout` option),
 *   and `S3File.slice(-n)` sends `bytes=<2^52-n>-...` instead of a suffix (oven-sh/bun#33687).
 *   With fetch, a read can be cancelled when the client goes away, has a deadline for the
 *   answer and for every chunk after it, and asks for exactly the absolute range we computed.
 * - S3Client calls are raced against a deadline; one that loses keeps running in the
 *   background (nothing can cancel it), but the caller gets StorageUnavailable on time.
 */
import { join, sep } from "node:path";
import {
  absoluteRange,
  checkKey,
  eachLimit,
  ObjectNotFound,
  StorageUnavailable,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
  type PresignOptions,
  type PutOptions,
  type ReadOptions,
  type ReadRange,
} from "./object-store.ts";
import { readdir } from "node:fs/promises";
import { relative } from "node:path";

export interface S3StoreOptions {
  /** S3_ENDPOINT; unset: AWS S3 in `region`. */
  endpoint?: string;
  bucket: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Deadline of every call, of a read's first byte and of each later chunk. Default 10 s. */
  requestTimeoutMs?: number;
  /** A put's deadline grows with its size at this slowest acceptable rate. Default 1 MiB/s. */
  uploadMinBytesPerSecond?: number;
  /** Multipart part size (at least 5 MiB; grown so an object needs at most 10,000 parts). Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded at once. Default 4. */
  queueSize?: number;
  /** Keys per list request (S3's maximum, 1000, by default; smaller in tests to see pages). */
  listPageSize?: number;
}

const MiB = 1024 * 1024;
/** S3's limits: parts of 5 MiB to 5 GiB, at most 10,000 of them. */
const MIN_PART = 5 * MiB;
const MAX_PARTS = 10_000;

/** S3 error codes worth another try (the server is up but had a bad moment). */
const RETRIED = new Set(["InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"]);

function s3Code(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

export class S3Store implements ObjectStore {
  readonly kind = "s3" as const;
  readonly client: Bun.S3Client;
  readonly bucket: string;
  private readonly timeoutMs: number;
  private readonly minRate: number;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly listPageSize: number;

  constructor(options: S3StoreOptions) {
    this.bucket = options.bucket;
    this.client = new Bun.S3Client({
      bucket: options.bucket,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.region ? { region: options.region } : {}),
      ...(options.accessKeyId ? { accessKeyId: options.accessKeyId } : {}),
      ...(options.secretAccessKey ? { secretAccessKey: options.secretAccessKey } : {}),
      ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}),
    });
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.minRate = options.uploadMinBytesPerSecond ?? MiB;
    this.partSize = Math.max(MIN_PART, options.partSize ?? 8 * MiB);
    this.queueSize = options.queueSize ?? 4;
    this.listPageSize = options.listPageSize ?? 1000;
  }

  localPath(): null {
    return null;
  }

  /** Maps what Bun.S3Client throws: NoSuchKey is ObjectNotFound, everything else StorageUnavailable. */
  private failure(error: unknown, operation: string, key: string): Error {
    if (error instanceof StorageUnavailable || error instanceof ObjectNotFound || error instanceof RangeError) return error;
    if (s3Code(error) === "NoSuchKey") return new ObjectNotFound(key);
    const detail = s3Code(error) ?? (error as Error)?.message ?? String(error);
    return new StorageUnavailable(`object storage failed to ${operation} ${key}: ${detail}`, operation, { cause: error });
  }

  /** Races an S3Client call against a deadline (see the module comment). */
  private async deadline<T>(operation: string, key: string, work: () => Promise<T>, ms = this.timeoutMs): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const running = Promise.resolve().then(work);
    running.catch(() => {}); // a late failure after the deadline is nobody's to handle
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StorageUnavailable(`object storage did not ${operation} ${key} within ${ms} ms`, operation)), ms);
    });
    try {
      return await Promise.race([running, late]);
    } catch (error) {
      throw this.failure(error, operation, key);
    } finally {
      clearTimeout(timer);
    }
  }

  async putFile(key: string, path: string, options: PutOptions = {}): Promise<void> {
    checkKey(key);
    const file = Bun.file(path);
    const size = file.size;
    const partSize = Math.max(this.partSize, Math.ceil(size / MAX_PARTS / MiB) * MiB);
    const ms = this.timeoutMs + Math.ceil((size / this.minRate) * 1000);
    await this.deadline(
      "put",
      key,
      () => this.client.write(key, file, { partSize, queueSize: this.queueSize, retry: 3, type: options.type ?? (file.type || "application/octet-stream") }),
      ms,
    );
  }

  async putDirectory(prefix: string, dir: string): Promise<string[]> {
    checkKey(prefix, "prefix");
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    const files = entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
    const keys = files.map((file) => prefix + file.split(sep).join("/"));
    // Many small files (segments): a few at once hides the per-request latency.
    await eachLimit(files, 8, (file) => this.putFile(prefix + file.split(sep).join("/"), join(dir, file)));
    return keys;
  }

  /** fetch on a presigned URL with a deadline for the answer; `signal` (the caller's) also aborts it. */
  private async request(operation: string, key: string, method: "GET" | "HEAD", headers: Record<string, string>, signal?: AbortSignal) {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) controller.abort(signal.reason);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new StorageUnavailable(`object storage did not answer ${operation} ${key} within ${this.timeoutMs} ms`, operation));
    }, this.timeoutMs);
    const url = this.client.presign(key, { method, expiresIn: 300 });
    try {
      const response = await fetch(url, { method, headers, signal: controller.signal, decompress: false } as RequestInit);
      return { response, controller, done: () => signal?.removeEventListener("abort", onAbort) };
    } catch (error) {
      signal?.removeEventListener("abort", onAbort);
      if (signal?.aborted && !timedOut) throw signal.reason ?? error;
      throw timedOut ? (controller.signal.reason as Error) : this.failure(error, operation, key);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * An error answer: 404 → ObjectNotFound, 416 → RangeError, the rest → StorageUnavailable. Its
   * body (for S3's `<Code>`) is read within the deadline too: a bucket or proxy that sends an
   * error's head and then stalls its body must not hang the request (and every request waiting
   * for the same block).
   */
  private async refusal(response: Response, operation: string, key: string, controller?: AbortController): Promise<Error> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        controller?.abort();
        resolve("");
      }, this.timeoutMs);
    });
    const body = await Promise.race([response.text().catch(() => ""), deadline]).finally(() => clearTimeout(timer));
    if (response.status === 404) return new ObjectNotFound(key);
    if (response.status === 416) return new RangeError(`range not satisfiable for ${key}`);
    const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
    return new StorageUnavailable(`object storage answered ${response.status}${code ? ` ${code}` : ""} to ${operation} ${key}`, operation);
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    checkKey(key);
    const { response, controller, done } = await this.request("stat", key, "HEAD", {});
    done();
    if (response.status === 404) return null;
    if (!response.ok) throw await this.refusal(response, "stat", key, controller);
    const size = Number(response.headers.get("content-length"));
    if (!Number.isSafeInteger(size)) throw new StorageUnavailable(`object storage gave no size for ${key}`, "stat");
    const modified = response.headers.get("last-modified");
    return { key, size, etag: response.headers.get("etag") ?? undefined, lastModified: modified ? new Date(modified) : undefined };
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async read(key: string, range: ReadRange, options: ReadOptions = {}): Promise<ObjectBody> {
    checkKey(key);
    let size = options.size;
    if ("suffix" in range && size === undefined) {
      const info = await this.stat(key);
      if (!info) throw new ObjectNotFound(key);
      size = info.size;
    }
    // Always absolute offsets: `bytes=-n` is answered wrongly by some S3-compatible servers.
    const want = size === undefined ? absoluteRange(range, Number.MAX_SAFE_INTEGER) : absoluteRange(range, size);
    const { response, controller, done } = await this.request("read", key, "GET", { range: `bytes=${want.start}-${want.end}` }, options.signal);
    if (response.status !== 206 && response.status !== 200) {
      done();
      throw await this.refusal(response, "read", key, controller);
    }
    let start = 0;
    let end: number;
    let total: number;
    if (response.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get("content-range") ?? "");
      if (!m) {
        done();
        controller.abort();
        throw new StorageUnavailable(`object storage sent a 206 without a usable Content-Range for ${key}`, "read");
      }
      [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
    } else {
      // A 200 is the whole object: usable only when that is what was asked.
      total = Number(response.headers.get("content-length"));
      end = total - 1;
    }
    const wantEnd = Math.min(want.end, total - 1);
    if (start !== want.start || end < wantEnd || (size !== undefined && total !== size)) {
      done();
      controller.abort();
      throw new StorageUnavailable(`object storage answered bytes ${start}-${end}/${total} for ${want.start}-${want.end} of ${key}`, "read");
    }
    // More than asked is cut to what was asked: s3rver 3.7.1 answers `bytes=0-0` with the whole object.
    return { stream: this.exactBody(response, controller, wantEnd - start + 1, key, done), start, end: wantEnd, size: total };
  }

  /**
   * The body, checked: exactly `length` bytes, each chunk within the deadline, or the stream
   * errors (a truncated body must never look complete). Cancelling it aborts the request.
   */
  private exactBody(response: Response, controller: AbortController, length: number, key: string, done: () => void): ReadableStream<Uint8Array> {
    const reader = response.body!.getReader();
    let remaining = length;
    const timeoutMs = this.timeoutMs;
    return new ReadableStream<Uint8Array>(
      {
        async pull(out) {
          let timedOut = false;
          const timer = setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, timeoutMs);
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (error) {
            done();
            const reason = timedOut ? `no bytes of ${key} for ${timeoutMs} ms` : `reading ${key} failed: ${(error as Error)?.message ?? error}`;
            out.error(controller.signal.aborted && !timedOut ? (controller.signal.reason ?? error) : new StorageUnavailable(`object storage: ${reason}`, "read", { cause: error }));
            return;
          } finally {
            clearTimeout(timer);
          }
          if (chunk.done) {
            done();
            if (remaining === 0) out.close();
            else out.error(new StorageUnavailable(`object storage ended ${key} ${remaining} bytes short`, "read"));
            return;
          }
          if (chunk.value.byteLength > remaining) {
            // Past what was asked (see read): keep the asked bytes, drop the connection.
            done();
            if (remaining > 0) out.enqueue(chunk.value.subarray(0, remaining));
            remaining = 0;
            controller.abort();
            reader.cancel().catch(() => {});
            out.close();
            return;
          }
          remaining -= chunk.value.byteLength;
          out.enqueue(chunk.value);
        },
        cancel(reason) {
          done();
          controller.abort(reason);
          return reader.cancel(reason).catch(() => {});
        },
      },
      { highWaterMark: 0 },
    );
  }

  presign(key: string, options: PresignOptions): string {
    checkKey(key);
    return this.client.presign(key, {
      method: "GET",
      expiresIn: options.expiresIn,
      ...(options.contentDisposition ? { contentDisposition: options.contentDisposition } : {}),
    });
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.retried(() => this.deadline("delete", key, () => this.client.delete(key)));
    } catch (error) {
      if (!(error instanceof ObjectNotFound)) throw error;
    }
  }

  /**
   * Retries an idempotent call (delete, list) after a 500/503 from a server that is up: S3 asks
   * clients to retry InternalError and SlowDown, and s3rver 3.7.1 answers 500 to concurrent
   * deletes in one folder (its rmdir races). Timeouts and refused connections fail at once.
   */
  private async retried<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        const code = s3Code((error as Error).cause);
        if (attempt >= 2 || !(error instanceof StorageUnavailable) || !RETRIED.has(code ?? "")) throw error;
        await Bun.sleep(50 * 4 ** attempt);
      }
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    checkKey(prefix, "prefix");
    const keys: string[] = [];
    for await (const object of this.list(prefix)) keys.push(object.key);
    await eachLimit(keys, 8, (key) => this.delete(key));
    return keys.length;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (prefix !== "") checkKey(prefix, "prefix");
    let continuationToken: string | undefined;
    do {
      const token = continuationToken;
      const page = await this.retried(() =>
        this.deadline("list", prefix, () => this.client.list({ prefix, maxKeys: this.listPageSize, ...(token ? { continuationToken: token } : {}) })),
      );
      for (const object of page.contents ?? []) {
        yield {
          key: object.key,
          size: object.size ?? 0,
          etag: object.eTag,
          lastModified: object.lastModified ? new Date(object.lastModified) : undefined,
        };
      }
      continuationToken = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (continuationToken);
  }

  async check(): Promise<void> {
    await this.deadline("list", `bucket ${this.bucket}`, () => this.client.list({ maxKeys: 1 }));
  }
}
