/** GET /metrics: Prometheus text format (the API key is required: src/access/policy.ts). */
import { Elysia } from "elysia";
import { AUTH_RESPONSES } from "../access/plugin.ts";
import { registry } from "./metrics.ts";

export function metricsRoutes(collect: () => Promise<string> = () => registry.metrics()) {
  return new Elysia({ name: "spool.metrics" }).get(
    "/metrics",
    async () => new Response(await collect(), { headers: { "content-type": registry.contentType, "cache-control": "no-store" } }),
    {
      detail: {
        operationId: "metrics",
        tags: ["operations"],
        summary: "Prometheus metrics",
        description:
          "Requests by route and status (`spool_http_requests_total`, `spool_stream_responses_total`), bytes answered, in-flight requests, upload bytes, ingest and transcode queue depths and job durations, cache hit ratios, and the process's CPU, memory and file descriptors. With WORKERS > 1 the answer sums every serving process.",
        responses: { 200: { description: "Prometheus text exposition format", content: { "text/plain": { schema: { type: "string" } } } }, ...AUTH_RESPONSES },
      },
    },
  );
}
