/**
 * `/metrics` as a native Bun route (src/native-routes.ts): Prometheus scrapes whichever process
 * the kernel hands its connection to, and a WORKERS child must not build the whole Elysia app
 * for that (issue 15). The same answers as the Elysia app's: the API key first (as its access
 * guard does, before routing), then 405 for methods other than GET and HEAD, and with
 * METRICS=0 the 404 of a path no route serves.
 */
import type { AccessControl, PeerSource } from "../access/service.ts";
import { errorResponse, HttpError, httpErrorResponse, methodNotAllowed } from "../http/errors.ts";
import { withTelemetry } from "../lib/telemetry.ts";
import { registry } from "./metrics.ts";

export const METRICS_ROUTE = "/metrics";

/** `collect`: this process's registry, or every process's summed (src/index.ts); null: METRICS=0. */
export function nativeMetricsRoute(access: AccessControl, collect: (() => Promise<string>) | null) {
  const answer = async (request: Request, server: PeerSource): Promise<Response> => {
    try {
      await access.requireManagement(request, server);
    } catch (error) {
      if (error instanceof HttpError) return httpErrorResponse(error);
      throw error;
    }
    if (collect === null) return errorResponse(404, "not_found", `No route for ${request.method} ${METRICS_ROUTE}`);
    if (request.method !== "GET" && request.method !== "HEAD") return methodNotAllowed(request.method, `on ${METRICS_ROUTE}`, "GET, HEAD");
    return new Response(await collect(), { headers: { "content-type": registry.contentType, "cache-control": "no-store" } });
  };
  const serve = withTelemetry(METRICS_ROUTE, answer);
  // OPTIONS needs no key (a preflight carries none: src/access/policy.ts), and is not served.
  const options = withTelemetry(METRICS_ROUTE, (request) =>
    collect === null ? errorResponse(404, "not_found", `No route for OPTIONS ${METRICS_ROUTE}`) : methodNotAllowed("OPTIONS", `on ${METRICS_ROUTE}`, "GET, HEAD"),
  );
  return { [METRICS_ROUTE]: { GET: serve, HEAD: serve, POST: serve, PUT: serve, PATCH: serve, DELETE: serve, OPTIONS: options } };
}
