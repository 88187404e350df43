/**
 * N concurrent slow readers: raw `Bun.connect` TCP sockets, each sending one ranged GET and then
 * reading at a video bitrate (token bucket; the socket is paused when it is ahead, so the server
 * sees real TCP backpressure rather than a client that buffers). Bounded: every socket is closed
 * after `seconds`, and the process exits by itself. Prints `@@SLOWJSON {...}`.
 *
 * Usage: bun bench/lib/slow-readers.ts '<SlowSpec JSON>'
 */
import type { Socket } from "bun";
import { ParkMiller } from "./prng.ts";

export interface SlowSpec {
  host: string;
  port: number;
  path: string;
  fileSize: number;
  n: number;
  /** Bytes per second per reader (2 Mbit/s = 250000). */
  rateBps: number;
  seconds: number;
  seed: number;
}

export interface SlowResult {
  n: number;
  connected: number;
  connectErrors: number;
  /** Closed by the server (or errored) before the end of the run. */
  closedEarly: number;
  statuses: Record<string, number>;
  totalBytes: number;
  /** Per-reader achieved rate, bytes/s. */
  rateP5: number;
  rateP50: number;
  /** Time to first response byte, ms. */
  ttfbP50: number;
  ttfbP99: number;
  seconds: number;
}

interface Reader {
  opened: number;
  firstByte: number;
  bytes: number;
  status: string;
  socket: Socket<undefined> | null;
  paused: boolean;
  closed: boolean;
  failed: boolean;
}

function pct(xs: number[], p: number): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

async function main(spec: SlowSpec): Promise<SlowResult> {
  const rng = new ParkMiller(spec.seed);
  const rangeLen = Math.min(spec.fileSize, Math.ceil(spec.rateBps * spec.seconds * 2));
  const burst = 64 * 1024;
  const readers: Reader[] = [];
  const t0 = performance.now();
  const endAt = t0 + spec.seconds * 1000;
  let connectErrors = 0;

  const allowance = (r: Reader, now: number) => burst + ((now - r.opened) / 1000) * spec.rateBps;

  const openOne = async () => {
    const start = rng.below(spec.fileSize - rangeLen + 1);
    const req =
      `GET ${spec.path} HTTP/1.1\r\nHost: ${spec.host}:${spec.port}\r\n` +
      `Range: bytes=${start}-${start + rangeLen - 1}\r\nUser-Agent: spool-bench-slow-reader\r\n\r\n`;
    const r: Reader = { opened: performance.now(), firstByte: 0, bytes: 0, status: "", socket: null, paused: false, closed: false, failed: false };
    readers.push(r);
    try {
      r.socket = await Bun.connect({
        hostname: spec.host,
        port: spec.port,
        socket: {
          open(s) {
            r.opened = performance.now();
            s.write(req);
          },
          data(s, chunk) {
            const now = performance.now();
            if (!r.firstByte) {
              r.firstByte = now;
              const head = chunk.subarray(0, 16).toString("latin1");
              r.status = head.split(" ")[1] ?? "?";
            }
            r.bytes += chunk.length;
            if (r.bytes > allowance(r, now) && !r.paused) {
              s.pause();
              r.paused = true;
            }
          },
          close() {
            r.closed = true;
          },
          error() {
            r.failed = true;
          },
          connectError() {
            r.failed = true;
            connectErrors++;
          },
        },
      });
    } catch {
      if (!r.failed) connectErrors++;
      r.failed = true;
    }
  };

  // Ramp: batches of 50 every 20 ms (1,000 readers in ~0.4 s), bounded by the run's end.
  const ramp = (async () => {
    for (let i = 0; i < spec.n && performance.now() < endAt; i += 50) {
      const batch: Promise<void>[] = [];
      for (let j = i; j < Math.min(spec.n, i + 50); j++) batch.push(openOne());
      await Promise.all(batch);
      await Bun.sleep(20);
    }
  })();

  // Token bucket refill: resume readers that are behind their allowance.
  const ticker = setInterval(() => {
    const now = performance.now();
    for (const r of readers) {
      if (r.paused && !r.closed && r.socket && r.bytes <= allowance(r, now)) {
        r.paused = false;
        r.socket.resume();
      }
    }
  }, 25);

  await ramp;
  const left = endAt - performance.now();
  if (left > 0) await Bun.sleep(left);
  clearInterval(ticker);
  const end = performance.now();

  let closedEarly = 0;
  const statuses: Record<string, number> = {};
  const rates: number[] = [];
  const ttfb: number[] = [];
  let totalBytes = 0;
  let connected = 0;
  for (const r of readers) {
    if (r.closed || r.failed) closedEarly++;
    if (r.socket) connected++;
    if (r.status) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    totalBytes += r.bytes;
    const span = (end - r.opened) / 1000;
    if (r.socket && span > 0.5) rates.push(r.bytes / span);
    if (r.firstByte) ttfb.push(r.firstByte - r.opened);
    try {
      r.socket?.terminate();
    } catch {}
  }
  return {
    n: spec.n,
    connected,
    connectErrors,
    closedEarly,
    statuses,
    totalBytes,
    rateP5: Math.round(pct(rates, 5)),
    rateP50: Math.round(pct(rates, 50)),
    ttfbP50: Math.round(pct(ttfb, 50) * 10) / 10,
    ttfbP99: Math.round(pct(ttfb, 99) * 10) / 10,
    seconds: (end - t0) / 1000,
  };
}

if (import.meta.main) {
  const spec = JSON.parse(process.argv[2] ?? "{}") as SlowSpec;
  const hard = setTimeout(() => {
    console.error("slow-readers: hard time limit reached");
    process.exit(2);
  }, (spec.seconds + 30) * 1000);
  const res = await main(spec);
  clearTimeout(hard);
  console.log(`@@SLOWJSON ${JSON.stringify(res)}`);
  process.exit(0);
}
