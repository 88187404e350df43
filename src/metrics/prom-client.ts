/**
 * The parts of prom-client Spool uses, required one by one. prom-client's index also loads its
 * Pushgateway, which requires node:http, node:https and node:zlib at load: about 5 MiB of
 * resident memory in every process for a client Spool never uses. (prom-client 15 has no
 * `exports` map, so its lib/ files are reachable; the types are the package's own.)
 */
import type * as Prom from "prom-client";

export const Registry: typeof Prom.Registry = require("prom-client/lib/registry");
export const Counter: typeof Prom.Counter = require("prom-client/lib/counter");
export const Gauge: typeof Prom.Gauge = require("prom-client/lib/gauge");
export const Histogram: typeof Prom.Histogram = require("prom-client/lib/histogram");
export const collectDefaultMetrics: typeof Prom.collectDefaultMetrics = require("prom-client/lib/defaultMetrics");
export const AggregatorRegistry: typeof Prom.AggregatorRegistry = require("prom-client/lib/cluster");
