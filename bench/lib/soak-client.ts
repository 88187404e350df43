/**
 * The soak's traffic: mixed requests against one Spool on loopback at a bounded rate, plus a
 * trickle of slow raw-TCP readers, for a fixed time. Every answer is checked (status, body size);
 * anything unexpected, a connection error or a timeout is an error. Bounded: it stops at
 * `seconds` (in-flight requests get at most their timeout) and has a hard exit.
 *
 * Prints `@@SOAKPROGRESS {...}` every `progressMs` and `@@SOAKJSON {...}` (a SoakClientResult) at
 * the end. Its sockets close when it exits, so the server's descriptors can be compared with the
 * start once it is gone. Usage: bun bench/lib/soak-client.ts '<SoakSpec JSON>'
 */
import type { Socket } from "bun";
import { ParkMiller } from "./prng.ts";

export interface SoakSpec {
  /** Loopback only: anything but 127.0.0.1 / ::1 / localhost is refused. */
  host: string;
  port: number;
  seconds: number;
  /** Requests per second over all kinds (the slow readers come on top). */
  rate: number;
  /** Requests in flight at most (keep-alive connections, roughly). */
  concurrency: number;
  slowReaders: number;
  slowRateBps: number;
  slowRangeBytes: number;
  videoId: string;
  /** `/api/stream/<id>` of the public video. */
  videoPath: string;
  fileSize: number;
  etag: string;
  /** `/api/stream/<id>?token=…` of the signed copy, when there is one. */
  signedPath?: string;
  /** An HLS master playlist, when one was built. */
  hlsPath?: string;
  apiKey: string;
  seed: number;
  /** One request of every kind (and one slow reader of each sort), then exit. */
  onePass?: boolean;
  progressMs: number;
}

export interface KindStats {
  requests: number;
  errors: number;
  bytes: number;
  statuses: Record<string, number>;
  /** Milliseconds to the complete answer (p50, p99), for the record. */
  p50ms: number;
  p99ms: number;
}

export interface SoakClientResult {
  seconds: number;
  requests: number;
  errors: number;
  kinds: Record<string, KindStats>;
  /** The first errors, with when they happened. */
  errorSamples: string[];
}

export interface SoakProgress {
  t: number;
  requests: number;
  errors: number;
}

/** What each kind is, for the report. */
export const KIND_INFO: Record<string, string> = {
  range: "random 64 KiB range → 206",
  probe: "`bytes=0-1` probe → 206",
  revalidate: "If-None-Match → 304",
  signed: "signed video, random 64 KiB range with `?token=` → 206",
  whole: "whole-file download → 200, every byte",
  abort: "whole-file download cut by the client after 1 MiB",
  list: "`GET /api/videos` with the key → 200",
  video: "`GET /api/videos/<id>` → 200",
  hls: "HLS master playlist → 200",
  notfound: "unknown video → 404",
  unauthorized: "`GET /api/videos` without the key → 401",
  slow: "slow reader (250 kB/s raw TCP), whole range → 206",
  "slow-abandon": "slow reader that hangs up halfway",
};

const WEIGHTS: [string, number][] = [
  ["range", 30],
  ["probe", 12],
  ["revalidate", 12],
  ["signed", 5],
  ["list", 10],
  ["video", 10],
  ["hls", 6],
  ["notfound", 3],
  ["unauthorized", 3],
  ["whole", 1],
  ["abort", 2],
];

const RANGE = 65_536;
const TIMEOUT_MS = 15_000;
const WHOLE_TIMEOUT_MS = 60_000;

function pct(xs: number[], p: number): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! * 10) / 10;
}

async function main(spec: SoakSpec): Promise<SoakClientResult> {
  if (!["127.0.0.1", "::1", "localhost"].includes(spec.host)) throw new Error(`the soak targets loopback only, not ${spec.host}`);
  const base = `http://${spec.host.includes(":") ? `[${spec.host}]` : spec.host}:${spec.port}`;
  const rng = new ParkMiller(spec.seed);
  const t0 = performance.now();
  const endAt = t0 + spec.seconds * 1000;
  const stats = new Map<string, { requests: number; errors: number; bytes: number; statuses: Record<string, number>; ms: number[] }>();
  const errorSamples: string[] = [];
  let requests = 0;
  let errors = 0;
  const stat = (kind: string) => {
    let s = stats.get(kind);
    if (!s) stats.set(kind, (s = { requests: 0, errors: 0, bytes: 0, statuses: {}, ms: [] }));
    return s;
  };
  const record = (kind: string, status: number | string, bytes: number, ms: number, error?: string) => {
    const s = stat(kind);
    s.requests++;
    requests++;
    s.bytes += bytes;
    s.statuses[String(status)] = (s.statuses[String(status)] ?? 0) + 1;
    // Keep the latency sample bounded (every request up to 20k, then every 16th).
    if (s.ms.length < 20_000 || s.requests % 16 === 0) s.ms.push(ms);
    if (error) {
      s.errors++;
      errors++;
      if (errorSamples.length < 20) errorSamples.push(`${((performance.now() - t0) / 1000).toFixed(1)} s ${kind}: ${error}`);
    }
  };

  const kinds = WEIGHTS.filter(([k]) => (k !== "signed" || spec.signedPath) && (k !== "hls" || spec.hlsPath));
  const total = kinds.reduce((n, [, w]) => n + w, 0);
  const pick = (): string => {
    let x = rng.below(total);
    for (const [k, w] of kinds) {
      if (x < w) return k;
      x -= w;
    }
    return "range";
  };
  const key = { Authorization: `Bearer ${spec.apiKey}` };
  // A well-formed id that no video has (same length and alphabet as the real one).
  const missing = spec.videoId.replace(/./g, (c, i: number) => (i % 2 ? "Z" : c === "A" ? "B" : "A"));

  async function one(kind: string): Promise<void> {
    const started = performance.now();
    const done = (status: number | string, bytes: number, error?: string) => record(kind, status, bytes, performance.now() - started, error);
    let path = spec.videoPath;
    let headers: Record<string, string> = {};
    let want = 200;
    let wantBytes: number | null = null;
    const start = rng.below(spec.fileSize - RANGE + 1);
    switch (kind) {
      case "range":
        headers = { Range: `bytes=${start}-${start + RANGE - 1}` };
        [want, wantBytes] = [206, RANGE];
        break;
      case "signed":
        path = spec.signedPath as string;
        headers = { Range: `bytes=${start}-${start + RANGE - 1}` };
        [want, wantBytes] = [206, RANGE];
        break;
      case "probe":
        headers = { Range: "bytes=0-1" };
        [want, wantBytes] = [206, 2];
        break;
      case "revalidate":
        headers = { "If-None-Match": spec.etag };
        [want, wantBytes] = [304, 0];
        break;
      case "whole":
      case "abort":
        wantBytes = spec.fileSize;
        break;
      case "list":
        path = "/api/videos";
        headers = { Accept: "application/json", ...key };
        break;
      case "video":
        path = `/api/videos/${spec.videoId}`;
        headers = { Accept: "application/json" };
        break;
      case "hls":
        path = spec.hlsPath as string;
        break;
      case "notfound":
        path = `/api/stream/${missing}`;
        want = 404;
        break;
      case "unauthorized":
        path = "/api/videos";
        headers = { Accept: "application/json" };
        want = 401;
        break;
    }
    const cut = new AbortController();
    const signal = AbortSignal.any([cut.signal, AbortSignal.timeout(kind === "whole" || kind === "abort" ? WHOLE_TIMEOUT_MS : TIMEOUT_MS)]);
    let status = 0;
    let bytes = 0;
    try {
      const res = await fetch(base + path, { headers, signal, redirect: "manual" });
      status = res.status;
      if (kind === "whole" || kind === "abort") {
        // Counted as it arrives: never the whole file in memory.
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        for (;;) {
          const { done: end, value } = await reader.read();
          if (end) break;
          bytes += value.length;
          if (kind === "abort" && bytes >= 1 << 20) {
            cut.abort();
            await reader.cancel().catch(() => {});
            break;
          }
        }
        if (status !== want) return done(status, bytes, `status ${status} (want ${want})`);
        if (kind === "whole" && bytes !== wantBytes) return done(status, bytes, `received ${bytes} bytes of ${wantBytes}`);
        if (kind === "abort" && bytes < 1 << 20) return done(status, bytes, `the body ended after ${bytes} bytes`);
        return done(status, bytes);
      }
      const body = new Uint8Array(await res.arrayBuffer());
      bytes = body.length;
      if (status !== want) return done(status, bytes, `status ${status} (want ${want}): ${new TextDecoder().decode(body.subarray(0, 160))}`);
      if (wantBytes !== null && bytes !== wantBytes) return done(status, bytes, `received ${bytes} bytes (want ${wantBytes})`);
      if (kind === "list" || kind === "video") {
        const json = JSON.parse(new TextDecoder().decode(body)) as { items?: unknown; id?: unknown };
        if (kind === "list" ? !Array.isArray(json.items) || json.items.length === 0 : json.id !== spec.videoId) return done(status, bytes, `unexpected JSON ${new TextDecoder().decode(body.subarray(0, 160))}`);
      }
      if (kind === "hls" && !new TextDecoder().decode(body.subarray(0, 7)).startsWith("#EXTM3U")) return done(status, bytes, "not an m3u8 playlist");
      return done(status, bytes);
    } catch (e) {
      const name = e instanceof Error ? e.name : "";
      const timedOut = name === "TimeoutError" || (signal.aborted && !cut.signal.aborted);
      return done(timedOut ? "timeout" : "error", bytes, timedOut ? "timed out" : `connection error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** A raw-TCP reader of one range at `slowRateBps` (paused when ahead: real backpressure). */
  function slowReader(abandon: boolean, until: number): Promise<void> {
    const kind = abandon ? "slow-abandon" : "slow";
    const len = spec.slowRangeBytes;
    const startAt = rng.below(spec.fileSize - len + 1);
    const req = `GET ${spec.videoPath} HTTP/1.1\r\nHost: ${spec.host}:${spec.port}\r\nRange: bytes=${startAt}-${startAt + len - 1}\r\nConnection: close\r\nUser-Agent: spool-bench-soak\r\n\r\n`;
    const opened = performance.now();
    const limitMs = (len / spec.slowRateBps) * 3000 + 10_000;
    return new Promise<void>((resolve) => {
      let head = "";
      let status = "";
      let body = 0;
      let finished = false;
      let paused = false;
      let sock: Socket<undefined> | null = null;
      const finish = (error?: string) => {
        if (finished) return;
        finished = true;
        clearInterval(ticker);
        try {
          sock?.terminate();
        } catch {}
        record(kind, status || "none", body, performance.now() - opened, error);
        resolve();
      };
      const allowance = () => 32 * 1024 + ((performance.now() - opened) / 1000) * spec.slowRateBps;
      const ticker = setInterval(() => {
        const now = performance.now();
        if (now - opened > limitMs) return finish(`timed out with ${body} of ${len} bytes`);
        // The soak is over: a reader still going is cut, not counted (the server did nothing wrong).
        if (now > until && !spec.onePass) {
          finished = true;
          clearInterval(ticker);
          try {
            sock?.terminate();
          } catch {}
          return resolve();
        }
        if (paused && sock && body <= allowance()) {
          paused = false;
          sock.resume();
        }
      }, 25);
      Bun.connect({
        hostname: spec.host,
        port: spec.port,
        socket: {
          open(s) {
            sock = s;
            s.write(req);
          },
          data(s, chunk) {
            if (!status) {
              head += chunk.toString("latin1");
              const end = head.indexOf("\r\n\r\n");
              if (end < 0) return;
              status = head.slice(0, head.indexOf("\r\n")).split(" ")[1] ?? "?";
              body += head.length - end - 4;
              if (status !== "206") return finish(`status ${status} (want 206)`);
            } else body += chunk.length;
            if (body > len) return finish(`received ${body} bytes (want ${len})`);
            if (abandon && body >= len / 2) return finish();
            if (body === len) return finish();
            if (body > allowance() && !paused) {
              paused = true;
              s.pause();
            }
          },
          close() {
            if (!finished) finish(`closed after ${body} of ${len} bytes`);
          },
          error(_s, e) {
            if (!finished) finish(`socket error: ${e.message}`);
          },
          connectError(_s, e) {
            finish(`connection error: ${e.message}`);
          },
        },
      }).catch((e: unknown) => finish(`connection error: ${String(e)}`));
    });
  }

  const progress = setInterval(() => {
    const p: SoakProgress = { t: Math.round((performance.now() - t0) / 100) / 10, requests, errors };
    console.log(`@@SOAKPROGRESS ${JSON.stringify(p)}`);
  }, spec.progressMs);

  if (spec.onePass) {
    for (const [kind] of kinds) await one(kind);
    await slowReader(false, Infinity);
    await slowReader(true, Infinity);
  } else {
    // Paced: request i starts at t0 + i / rate, by whichever of `concurrency` loops is free.
    const interval = 1000 / spec.rate;
    let seq = 0;
    const worker = async () => {
      for (;;) {
        const at = t0 + seq++ * interval;
        if (at >= endAt) return;
        const wait = at - performance.now();
        if (wait > 0) await Bun.sleep(wait);
        await one(pick());
      }
    };
    const trickle = async (i: number) => {
      // Staggered starts; every other reader hangs up halfway.
      await Bun.sleep(Math.min(spec.seconds * 250, i * 500));
      for (let n = 0; performance.now() < endAt; n++) await slowReader((i + n) % 2 === 1, endAt);
    };
    await Promise.all([
      ...Array.from({ length: spec.concurrency }, worker),
      ...Array.from({ length: spec.slowReaders }, (_, i) => trickle(i)),
    ]);
  }
  clearInterval(progress);
  const kindsOut: Record<string, KindStats> = {};
  for (const [k, s] of stats) kindsOut[k] = { requests: s.requests, errors: s.errors, bytes: s.bytes, statuses: s.statuses, p50ms: pct(s.ms, 50), p99ms: pct(s.ms, 99) };
  return { seconds: (performance.now() - t0) / 1000, requests, errors, kinds: kindsOut, errorSamples };
}

if (import.meta.main) {
  const spec = JSON.parse(process.argv[2] ?? "{}") as SoakSpec;
  const hard = setTimeout(() => {
    console.error("soak-client: hard time limit reached");
    process.exit(2);
  }, (spec.seconds + 120) * 1000);
  try {
    const res = await main(spec);
    clearTimeout(hard);
    console.log(`@@SOAKJSON ${JSON.stringify(res)}`);
    process.exit(0);
  } catch (e) {
    console.error(`soak-client: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  }
}
