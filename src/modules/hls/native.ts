/**
 * The ladder's files as native Bun routes (src/native-routes.ts): every HLS player asks every
 * serving process for playlists and segments, and a WORKERS child must not build the whole
 * Elysia app for that (issue 15), nor pay Elysia's per-request work. The same answers as the
 * Elysia app gives (test/integration/hls-pipeline.test.ts compares them): its telemetry, the CORS
 * headers its plugin (src/modules/cors) puts on every answer under /api/hls/, its preflights,
 * and the 204 with Allow of an OPTIONS that is not one. Every other method is a 405 with Allow
 * here, as on the stream route, key or not: the app answered one without the key 401 (its guard
 * runs before routing), and a child built the whole app for a scanner's POST.
 */
import type { BunRequest } from "bun";
import type { PeerSource } from "../../access/service.ts";
import { corsHeaders, preflightFor, withCorsHeaders } from "../../http/cors.ts";
import { methodNotAllowed } from "../../http/errors.ts";
import { requestPath } from "../../http/path.ts";
import { REQUEST_ID_HEADER, refusedMethods, requestIdOf, unhandledError, withTelemetry } from "../../lib/telemetry.ts";
import { expectedErrorResponse } from "../expected-errors.ts";
import type { LadderServer } from "./files.ts";

const FILE_ROUTE = "/api/hls/:id/:name";
const RENDITION_ROUTE = "/api/hls/:id/:name/:file";

export function nativeHlsRoutes(ladder: LadderServer, allowedOrigins: readonly string[]) {
  const withCors = (request: Request, response: Response): Response => withCorsHeaders(response, corsHeaders(allowedOrigins, request.headers.get("origin")));
  const route = (template: string, rest: (params: Record<string, string>) => string) => {
    const serve = withTelemetry<PeerSource>(template, async (request, server) => {
      const params = (request as BunRequest).params as Record<string, string>;
      let response: Response;
      try {
        response = await ladder(request, params.id ?? "", rest(params), server);
      } catch (error) {
        // A bucket that does not answer is a 503, as from the app; anything else a logged 500.
        response = expectedErrorResponse(error) ?? unhandledError(request, error);
      }
      return withCors(request, response);
    });
    const options = withTelemetry<PeerSource>(template, (request) => withCors(request, new Response(null, { status: 204, headers: { allow: "GET, HEAD, OPTIONS" } })));
    // A CORS preflight, answered before routing and telemetry, as the app's CORS plugin does.
    const preflight = (request: Request, server: PeerSource): Response | Promise<Response> => {
      const headers = preflightFor(allowedOrigins, request.headers);
      if (!headers) return options(request, server);
      return new Response(null, { status: 204, headers: { ...headers, [REQUEST_ID_HEADER]: requestIdOf(request) } });
    };
    const notAllowed = withTelemetry<PeerSource>(template, (request) => withCors(request, methodNotAllowed(request.method, `on ${requestPath(request.url)}`, "GET, HEAD, OPTIONS")));
    return { GET: serve, HEAD: serve, OPTIONS: preflight, ...refusedMethods(notAllowed) };
  };
  return {
    [FILE_ROUTE]: route(FILE_ROUTE, (p) => p.name ?? ""),
    [RENDITION_ROUTE]: route(RENDITION_ROUTE, (p) => `${p.name}/${p.file}`),
  };
}
