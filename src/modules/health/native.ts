/**
 * `/health` and `/ready` as native Bun routes (src/native-routes.ts): a load balancer polls
 * every process, and a WORKERS child must not build the whole Elysia app to answer it (issue 15).
 * Same answers as the Elysia routes (./answers.ts), with the same telemetry and 405s.
 */
import { methodNotAllowed } from "../../http/errors.ts";
import { requestPath } from "../../http/path.ts";
import { withTelemetry } from "../../lib/telemetry.ts";
import { healthAnswer, readyAnswer, type Readiness } from "./answers.ts";

const ALLOW = "GET, HEAD";

/** GET and HEAD answer; every other method is a 405 with Allow, as Elysia's router gives. */
function probeRoute(route: string, answer: () => Response | Promise<Response>) {
  const serve = withTelemetry(route, answer);
  const notAllowed = withTelemetry(route, (request) => methodNotAllowed(request.method, `on ${requestPath(request.url)}`, ALLOW));
  return { GET: serve, HEAD: serve, POST: notAllowed, PUT: notAllowed, PATCH: notAllowed, DELETE: notAllowed, OPTIONS: notAllowed };
}

export function nativeHealthRoutes(readiness: Readiness) {
  return {
    "/health": probeRoute("/health", healthAnswer),
    "/ready": probeRoute("/ready", () => readyAnswer(readiness)),
  };
}
