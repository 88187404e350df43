/**
 * `/health` and `/ready` as native Bun routes (src/native-routes.ts): a load balancer polls
 * every process, and a WORKERS child must not build the whole Elysia app to answer it (issue 15).
 * Same answers as the Elysia routes (./answers.ts), with the same telemetry and 405s.
 */
import { readOnlyRoute } from "../../lib/telemetry.ts";
import { healthAnswer, readyAnswer, type Readiness } from "./answers.ts";

export function nativeHealthRoutes(readiness: Readiness) {
  return {
    "/health": readOnlyRoute("/health", healthAnswer),
    "/ready": readOnlyRoute("/ready", () => readyAnswer(readiness)),
  };
}
