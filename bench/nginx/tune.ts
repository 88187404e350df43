#!/usr/bin/env bun
/**
 * nginx tuning investigation: runs nginx with each combination of tcp_nopush / tcp_nodelay /
 * sendfile_max_chunk on the range workloads (unaligned random ranges, 1 and 64 connections) and
 * prints throughput and p50/p99 latency, interleaved over rounds. The suite's choice
 * (NGINX_DEFAULT_TUNING in bench/lib/targets.ts) and the figures behind it are in bench/README.md.
 *
 *   bun bench/nginx/tune.ts [--rounds=3] [--duration=2]
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { runWrk, type LoadResult } from "../lib/load.ts";
import { ensureMainVideo } from "../lib/media.ts";
import { prepareWebroot, startNginx, type NginxTuning, type Running } from "../lib/targets.ts";
import { CACHE_DIR, installExitHooks, median } from "../lib/util.ts";

installExitHooks();
const opt = (name: string, def: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : def;
};
const rounds = opt("rounds", 3);
const durationS = opt("duration", 2);

const variants: (NginxTuning & { name: string })[] = [
  { name: "nopush on,  nodelay on,  chunk 2m", tcpNopush: "on", tcpNodelay: "on", sendfileMaxChunk: "2m" },
  { name: "nopush off, nodelay on,  chunk 2m", tcpNopush: "off", tcpNodelay: "on", sendfileMaxChunk: "2m" },
  { name: "nopush on,  nodelay off, chunk 2m", tcpNopush: "on", tcpNodelay: "off", sendfileMaxChunk: "2m" },
  { name: "nopush off, nodelay off, chunk 2m", tcpNopush: "off", tcpNodelay: "off", sendfileMaxChunk: "2m" },
  { name: "nopush on,  nodelay on,  chunk 0 ", tcpNopush: "on", tcpNodelay: "on", sendfileMaxChunk: "0" },
  { name: "nopush off, nodelay on,  chunk 512k", tcpNopush: "off", tcpNodelay: "on", sendfileMaxChunk: "512k" },
];
const workloads = [
  { name: "64KiB c1", len: 65536, c: 1 },
  { name: "64KiB c64", len: 65536, c: 64 },
  { name: "1MiB c64", len: 1048576, c: 64 },
  { name: "64KiB c256", len: 65536, c: 256 },
];

const main = await ensureMainVideo();
mkdirSync(CACHE_DIR, { recursive: true });
const tmp = mkdtempSync(resolve(CACHE_DIR, "tune-"));
try {
  const webroot = prepareWebroot(tmp, [main]);
  const servers: { v: (typeof variants)[number]; t: Running }[] = [];
  for (const [i, v] of variants.entries()) {
    const out = await startNginx({ media: [main], tmp, webroot, nginxTuning: v }, v, `nginx-${i}`);
    if (!out.ok) throw new Error(out.reason);
    servers.push({ v, t: out.running });
  }
  const results = new Map<string, LoadResult[]>();
  for (const w of workloads) {
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < servers.length; k++) {
        const { v, t } = servers[(k + r) % servers.length] as { v: (typeof variants)[number]; t: Running };
        const res = await runWrk({ kind: "ranges", baseUrl: t.baseUrl, path: t.paths.main ?? "", fileSize: main.size, rangeLen: w.len, seed: 1000 + r, connections: w.c, durationS });
        const key = `${w.name}|${v.name}`;
        results.set(key, [...(results.get(key) ?? []), res]);
      }
    }
    console.log(`\n${w.name}: median of ${rounds} x ${durationS}s (wrk, pinned)`);
    console.log("variant                               req/s     p50 ms   p99 ms   max ms");
    for (const v of variants) {
      const rs = results.get(`${w.name}|${v.name}`) ?? [];
      const f = (x: number) => (x / 1000).toFixed(2).padStart(8);
      console.log(
        `${v.name.padEnd(36)} ${Math.round(median(rs.map((x) => x.rps))).toString().padStart(7)} ${f(median(rs.map((x) => x.latency.p50)))} ${f(median(rs.map((x) => x.latency.p99)))} ${f(median(rs.map((x) => x.latency.max)))}`,
      );
    }
  }
  for (const s of servers) await s.t.stop();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
