/** The telemetry of src/lib/telemetry.ts as an Elysia plugin, for every Elysia route. */
import { Elysia } from "elysia";
import { httpDateNow } from "../http/date.ts";
import { REQUEST_ID_HEADER } from "./request-id.ts";
import { begin, record } from "./telemetry.ts";

export { REQUEST_ID_HEADER, idOf, newRequestId, requestIdOf, withTelemetry } from "./telemetry.ts";

function statusOf(response: unknown, setStatus: number | string | undefined): number {
  if (response instanceof Response) return response.status;
  if (typeof setStatus === "number") return setStatus;
  return 200;
}

export function requestTelemetry() {
  return new Elysia({ name: "spool.requests" })
    .onRequest(({ request, set }) => {
      set.headers[REQUEST_ID_HEADER] = begin(request);
      // Bun sends no Date on answers to HEAD (src/http/date.ts).
      if (request.method === "HEAD") set.headers.date = httpDateNow();
    })
    .onAfterResponse({ as: "global" }, ({ request, route, set, responseValue }) => {
      record(request, route, statusOf(responseValue, set.status as number | undefined));
    });
}
