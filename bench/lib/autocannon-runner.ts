/**
 * Child process that runs one autocannon measurement and prints `@@ACJSON {...}` (a LoadResult
 * without `generator`). Bundled for Node by bench/lib/load.ts (Bun runs it when node is missing).
 * Usage: node autocannon-runner.js '<LoadSpec JSON>'
 */
import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import type { LoadSpec } from "./load.ts";
import { ParkMiller } from "./prng.ts";


const spec = JSON.parse(process.argv[2] ?? "{}") as LoadSpec;
const rng = new ParkMiller(spec.seed ?? 1);
const fileSize = spec.fileSize ?? 0;
const len = spec.rangeLen ?? 0;

const request: autocannon.Request = { method: "GET", path: spec.path, headers: spec.headers ?? {} };
// (autocannon calls setupRequest whenever the key is present, so it is only set for ranges.)
if (spec.kind === "ranges") {
  request.setupRequest = (req) => {
    const start = rng.below(fileSize - len + 1);
    return { ...req, headers: { ...(req.headers ?? {}), range: `bytes=${start}-${start + len - 1}` } };
  };
}

// The player-start mix: the list replayed in order on this target's paths (as bench/wrk/mix.lua).
if (spec.kind === "mix") {
  const paths = readFileSync(spec.mixPaths ?? "", "utf8").split("\n").filter(Boolean);
  const list = readFileSync(spec.mixList ?? "", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" ").map(Number) as [number, number, number]);
  let next = 0;
  request.setupRequest = (req) => {
    const [video, start, end] = list[next++ % list.length] as [number, number, number];
    return { ...req, path: paths[video] ?? "/", headers: { ...(req.headers ?? {}), range: `bytes=${start}-${end}` } };
  };
}

const opts: autocannon.Options = {
  url: spec.baseUrl,
  connections: spec.connections,
  duration: spec.durationS,
  timeout: 10,
  pipelining: 1,
  requests: [request],
};

const result = await autocannon(opts);
const ms = (x: number) => Math.round(x * 1000);
const errors = result.errors + result.timeouts + result["4xx"] + result["5xx"];
const out = {
  requests: result.requests.total,
  bytes: result.throughput.total,
  durationS: result.duration,
  rps: result.requests.total / result.duration,
  mibps: result.throughput.total / result.duration / (1024 * 1024),
  latency: { p50: ms(result.latency.p50), p90: ms(result.latency.p90), p99: ms(result.latency.p99), max: ms(result.latency.max), mean: ms(result.latency.average) },
  errors,
  errorDetail: errors ? `errors ${result.errors}, timeouts ${result.timeouts}, 4xx ${result["4xx"]}, 5xx ${result["5xx"]}` : "",
};
console.log(`@@ACJSON ${JSON.stringify(out)}`);
