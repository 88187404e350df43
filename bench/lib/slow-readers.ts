/**
 * N concurrent slow readers: raw `Bun.connect` TCP sockets, each sending one ranged GET and then
 * reading at a video bitrate (token bucket; the socket is paused when it is ahead, so the server
 * sees real TCP backpressure rather than a client that buffers). Bounded: every socket is closed
 * after `seconds`, and the process exits by itself. Prints `@@SLOWJSON {...}`.
 *
 * Usage: bun bench/lib/slow-readers.ts '<SlowSpec JSON>'
 */
import type { Socket } from "bun";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
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
  /**
   * Only readers whose connection this process accepted (a WORKERS child, where several
   * processes share the port and the kernel picks one per connection): the others are closed
   * before they send anything and opened again (Linux: read from /proc). Unset: any process.
   */
  onlyPid?: number;
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

/**
 * For each of the client ports, whether process `pid` holds the server's end of its connection
 * (undefined while no process has accepted it yet): the socket inodes in /proc/<pid>/fd against
 * /proc/net/tcp{,6}'s entries for the server's port.
 */
function heldBy(pid: number, serverPort: number, clientPorts: number[]): Map<number, boolean | undefined> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link.startsWith("socket:[")) inodes.add(link.slice(8, -1));
    } catch {
      // closed meanwhile
    }
  }
  const local = `:${serverPort.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodeOf = new Map<number, string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(local)) inodeOf.set(parseInt(fields[2]!.split(":").pop()!, 16), fields[9]!);
    }
  }
  return new Map(clientPorts.map((port) => {
    const inode = inodeOf.get(port);
    return [port, inode === undefined || inode === "0" ? undefined : inodes.has(inode)];
  }));
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

  const openOne = async (keep = true): Promise<Reader> => {
    const start = rng.below(spec.fileSize - rangeLen + 1);
    const req =
      `GET ${spec.path} HTTP/1.1\r\nHost: ${spec.host}:${spec.port}\r\n` +
      `Range: bytes=${start}-${start + rangeLen - 1}\r\nUser-Agent: spool-bench-slow-reader\r\n\r\n`;
    const r: Reader = { opened: performance.now(), firstByte: 0, bytes: 0, status: "", socket: null, paused: false, closed: false, failed: false };
    if (keep) readers.push(r);
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
    return r;
  };

  /**
   * onlyPid: batches of readers, each kept if that process holds its connection. Known only once
   * the request is sent: the server's listening sockets defer accepting a connection until its
   * first bytes arrive (TCP_DEFER_ACCEPT), so the other process may have begun to answer one it
   * then loses.
   */
  const rampOnto = async (pid: number) => {
    for (let tries = 0; readers.length < spec.n && performance.now() < endAt && tries < spec.n * 30; ) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, spec.n - readers.length) }, () => openOne(false)));
      tries += batch.length;
      await Bun.sleep(30);
      const held = heldBy(pid, spec.port, batch.flatMap((r) => (r.socket && !r.closed ? [r.socket.localPort] : [])));
      for (const r of batch) {
        if (r.socket && !r.closed && held.get(r.socket.localPort) === true) readers.push(r);
        else r.socket?.terminate();
      }
    }
  };

  // Ramp: batches of 50 every 20 ms (1,000 readers in ~0.4 s), bounded by the run's end.
  const ramp = spec.onlyPid ? rampOnto(spec.onlyPid) : (async () => {
    for (let i = 0; i < spec.n && performance.now() < endAt; i += 50) {
      const batch: Promise<unknown>[] = [];
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
