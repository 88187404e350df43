/**
 * Per-request telemetry: an X-Request-Id on every answer (the client's, when it sent a sane one,
 * else a new one), one log line per request, and the request counter and duration histogram.
 * The Elysia routes get it from `requestTelemetry` (./requests.ts), native Bun routes other than
 * the stream from `withTelemetry`. The stream route does its own, cheaper accounting
 * (src/modules/stream/routes.ts): a counter, and no log line per hit. No Elysia here.
 */
import { loggedPath, requestPath } from "../http/path.ts";
import { httpDuration, httpRequests } from "../metrics/metrics.ts";
import { dateForHead } from "../http/date.ts";
import { errorResponse, methodNotAllowed } from "../http/errors.ts";
import { errorFields, logger } from "./log.ts";
import { REQUEST_ID_HEADER, requestIdOf } from "./request-id.ts";

export { REQUEST_ID_HEADER, newRequestId, requestIdOf } from "./request-id.ts";

interface Started {
  id: string;
  at: number;
}

const started = new WeakMap<Request, Started>();

/** The id of a request being answered (for log lines about it). */
export function idOf(request: Request): string | undefined {
  return started.get(request)?.id;
}

/** prom-client hashes a label set on every call; the few label sets in use are kept instead. */
const counters = new Map<string, ReturnType<typeof httpRequests.labels>>();
const histograms = new Map<string, ReturnType<typeof httpDuration.labels>>();

function counterFor(route: string, method: string, status: number) {
  const key = `${route} ${method} ${status}`;
  let child = counters.get(key);
  if (!child) counters.set(key, (child = httpRequests.labels({ route, method, status: String(status) })));
  return child;
}

function histogramFor(route: string, method: string) {
  const key = `${route} ${method}`;
  let child = histograms.get(key);
  if (!child) histograms.set(key, (child = httpDuration.labels({ route, method })));
  return child;
}

const log = logger("http");

export function begin(request: Request): string {
  const id = requestIdOf(request);
  started.set(request, { id, at: performance.now() });
  return id;
}

/** The request's counter, duration and log line, once its answer is known. */
export function record(request: Request, route: string, status: number): void {
  const start = started.get(request);
  const seconds = start ? (performance.now() - start.at) / 1000 : 0;
  // Unmatched paths are one label, not one per path a scanner tries.
  const template = route || "unmatched";
  counterFor(template, request.method, status).inc();
  histogramFor(template, request.method).observe(seconds);
  // The path, never the query (it can hold a playback token), nor an upload URL's secret.
  const fields = { reqId: start?.id, method: request.method, path: loggedPath(request.url), route: template, status, ms: Math.round(seconds * 10000) / 10 };
  // 503 is a state (draining, busy, no ffmpeg), not a fault of ours.
  if (status >= 500 && status !== 503) log.error(fields, "request failed");
  else log.info(fields, "request");
}

/**
 * The same telemetry for a native Bun route (no Elysia hooks run there): the request id on the
 * answer, the counter, duration (to the answer's head) and log line under `route`, and a JSON 500
 * for anything the handler throws.
 */
export function withTelemetry<S = unknown>(
  route: string,
  handle: (request: Request, server: S) => Response | Promise<Response>,
): (request: Request, server: S) => Promise<Response> {
  return async (request, server) => {
    const id = begin(request);
    let response: Response;
    try {
      response = await handle(request, server);
    } catch (error) {
      response = unhandledError(request, error);
    }
    response.headers.set(REQUEST_ID_HEADER, id);
    dateForHead(request, response);
    record(request, route, response.status);
    return response;
  };
}

/**
 * The methods a read-only native route refuses, each with `notAllowed` (a 405 with Allow): every
 * one Bun's router knows but GET, HEAD and OPTIONS, which such a route answers itself.
 */
export function refusedMethods<H>(notAllowed: H): Record<"POST" | "PUT" | "PATCH" | "DELETE" | "TRACE" | "CONNECT", H> {
  return { POST: notAllowed, PUT: notAllowed, PATCH: notAllowed, DELETE: notAllowed, TRACE: notAllowed, CONNECT: notAllowed };
}

/**
 * The method table of a native route that answers GET and HEAD with `handle` and every other
 * method Bun's router knows with a 405 and Allow, as the app's router does; all with telemetry.
 */
export function readOnlyRoute<S = unknown>(route: string, handle: (request: Request, server: S) => Response | Promise<Response>) {
  const serve = withTelemetry(route, handle);
  const notAllowed = withTelemetry<S>(route, (request) => methodNotAllowed(request.method, `on ${requestPath(request.url)}`, "GET, HEAD"));
  return { GET: serve, HEAD: serve, OPTIONS: notAllowed, ...refusedMethods(notAllowed) };
}

/**
 * A throw no handler expected is our bug: it is logged in full with the request's id, method and
 * path (never the query: it can hold a token; nor an upload URL's secret), and the client learns
 * nothing internal.
 */
export function unhandledError(request: Request, error: unknown): Response {
  log.error({ reqId: idOf(request), method: request.method, path: loggedPath(request.url), ...errorFields(error) }, "unhandled error");
  return errorResponse(500, "internal_error", "Something went wrong on our side");
}
