/**
 * X-Request-Id: the client's, when it sent a sane one, else a new one. Apart from ./requests.ts
 * (the Elysia telemetry plugin) so that the native stream route can use it without loading
 * Elysia: a WORKERS child that has only streamed holds no Elysia app (src/server.ts).
 */
export const REQUEST_ID_HEADER = "x-request-id";
/** What we accept from a client as a request id: short, printable, no separators that break logs. */
const SANE_ID = /^[A-Za-z0-9._:@\/+=-]{1,128}$/;

/** This process's ids: a random prefix and a counter, cheap enough for the stream route. */
const PREFIX = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36);
let counter = 0;

export function newRequestId(): string {
  return `${PREFIX}-${(++counter).toString(36)}`;
}

/** The id a request goes by: its own X-Request-Id when sane, else a new one. */
export function requestIdOf(request: Request): string {
  const given = request.headers.get(REQUEST_ID_HEADER);
  return given !== null && SANE_ID.test(given) ? given : newRequestId();
}
