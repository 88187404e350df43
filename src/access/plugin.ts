/**
 * The management guard (before routing, so an unauthenticated request is refused before its
 * body is parsed or validated) and the session routes: `POST /api/session` signs a browser in
 * with the key, `DELETE /api/session` signs it out.
 */
import { Elysia, t } from "elysia";
import { readJsonBody } from "../schemas/json-body.ts";
import { errorSchema } from "../http/error-schemas.ts";
import { HttpError } from "../http/errors.ts";
import { requestPath } from "../http/path.ts";
import { jsonContent } from "../schemas/openapi.ts";
import { SESSION_COOKIE, cookieValues, isHttps, isSameOrigin } from "./credentials.ts";
import { accessFor } from "./policy.ts";
import type { AccessControl } from "./service.ts";
import { SESSION_MAX_AGE_S, SIGN_IN_BODY_LIMIT } from "./sessions.ts";

const SIGN_IN_KEY_ERROR = "body key: must be the API key, a string of 1-512 characters";
const SignInBody = t.Object(
  { key: t.String({ minLength: 1, maxLength: 512, description: "The API key", error: SIGN_IN_KEY_ERROR }) },
  { description: "Sign in with the API key", additionalProperties: false },
);

function sessionCookie(value: string, maxAge: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

export const Unauthorized = errorSchema(
  "No credentials, or wrong ones: send `Authorization: Bearer <API key>`, or sign in with POST /api/session. The answer carries `WWW-Authenticate: Bearer`.",
  "unauthorized",
  "This needs the API key: send Authorization: Bearer <key>, or sign in (POST /api/session)",
);
export const CrossOrigin = errorSchema("A session cookie on a state-changing request from another site's page (CSRF)", "cross_origin_request", "A signed-in session may change the library only from Spool's own pages");
export const TooManyAttempts = errorSchema("Too many failed attempts from this client; wait `Retry-After` seconds", "too_many_attempts", "Too many failed sign-in attempts; try again in 42 s");

/** OpenAPI `security` of an operation anyone may call. */
export const OPEN_SECURITY: Record<string, string[]>[] = [];
/** OpenAPI `security` of playback routes: open for public videos; a token (or the key) for signed ones. */
export const PLAYBACK_SECURITY: Record<string, string[]>[] = [{}, { playbackToken: [] }, { apiKey: [] }, { session: [] }];

/** The errors every key-protected route may answer, for a route's `response` option. */
export const AUTH_ERRORS = { 401: Unauthorized, 403: CrossOrigin, 429: TooManyAttempts };

/** The same, for routes documented with `detail.responses`. */
export const AUTH_RESPONSES = {
  401: { description: Unauthorized.description!, content: jsonContent(Unauthorized) },
  403: { description: CrossOrigin.description!, content: jsonContent(CrossOrigin) },
  429: { description: TooManyAttempts.description!, content: jsonContent(TooManyAttempts) },
};

/**
 * Playback routes (open for a public video) given the key or a session instead of a token for a
 * signed one: a wrong one is refused as on any management route, and counts toward the limit.
 */
export const PLAYBACK_OWNER_RESPONSES = {
  401: { description: "A `signed` video asked without `?token=` but with a wrong API key or session", content: jsonContent(Unauthorized) },
  429: AUTH_RESPONSES[429],
};

/**
 * The 401 of a video's JSON and its pictures: their open row in the access table names ids of
 * the id alphabet only, so a path with any other character needs the key (deny by default).
 */
export const PLAYBACK_OWNER_BAD_ID_401 = {
  ...PLAYBACK_OWNER_RESPONSES[401],
  description: `${PLAYBACK_OWNER_RESPONSES[401].description}; or an id with characters other than A-Z a-z 0-9 _ - asked without the key (with it: 400)`,
};

export function accessRoutes(access: AccessControl) {
  return new Elysia({ name: "spool.access" })
    .onRequest(async ({ request, server }) => {
      if (accessFor(request.method, requestPath(request.url)) === "open") return;
      // A refusal is thrown to the app's onError, not returned: an answer returned from
      // onRequest skips onAfterResponse (Elysia 1.4.30), so it went unlogged and uncounted.
      await access.requireManagement(request, server);
    })
    .post(
      "/api/session",
      async ({ request, server, set }) => {
        // Signing in from another site's page would plant that site's session (login CSRF).
        if (request.headers.has("origin") && !isSameOrigin(access.ownOrigin(request), request.headers)) {
          throw new HttpError(403, "cross_origin_request", "Sign in from Spool's own pages");
        }
        const body = await readJsonBody(request, SignInBody, { usage: 'send {"key": "<API key>"}' });
        if (!access.checkKey(body.key, request, server)) {
          throw new HttpError(401, "unauthorized", "The API key is not valid", { "www-authenticate": 'Bearer realm="spool"' });
        }
        const secret = await access.sessions.create();
        set.status = 204;
        set.headers["set-cookie"] = sessionCookie(secret, SESSION_MAX_AGE_S, isHttps(request.url, request.headers));
        set.headers["cache-control"] = "no-store";
      },
      {
        // Read by hand (at most SIGN_IN_BODY_LIMIT bytes): Elysia's own parsing answered a deeply
        // nested body with a 500 (the call stack ran out), on the one JSON route open to anyone.
        parse: "none",
        detail: {
          requestBody: { required: true, content: jsonContent(SignInBody) },
          security: OPEN_SECURITY,
          operationId: "signIn",
          tags: ["access"],
          summary: "Sign a browser in (session cookie)",
          description: `Exchanges the API key for a session: 204 with \`Set-Cookie: ${SESSION_COOKIE}=…; HttpOnly; SameSite=Strict\` (and \`Secure\` over HTTPS or with \`X-Forwarded-Proto: https\`), valid for ${SESSION_MAX_AGE_S / 86400} days. The cookie then stands for the key on every route, except that a state-changing request must come from Spool's own pages (Origin check). Failed attempts count toward the per-client limit (429).`,
          responses: {
            204: { description: "Signed in; the cookie is set" },
            400: { description: "No key in the body", content: jsonContent(errorSchema("Malformed body", "bad_request", SIGN_IN_KEY_ERROR)) },
            413: { description: `A body over ${SIGN_IN_BODY_LIMIT} bytes`, content: jsonContent(errorSchema("Too large", "payload_too_large", `The request body exceeds ${SIGN_IN_BODY_LIMIT} bytes, the limit for signing in`)) },
            415: { description: "Not JSON", content: jsonContent(errorSchema("Not JSON", "unsupported_media_type", 'Send the body as application/json (send {"key": "<API key>"})')) },
            401: { description: "Wrong key", content: jsonContent(errorSchema("Wrong key", "unauthorized", "The API key is not valid")) },
            403: AUTH_RESPONSES[403],
            429: AUTH_RESPONSES[429],
          },
        },
      },
    )
    .delete(
      "/api/session",
      async ({ request, set }) => {
        // Every session the browser sent (one planted by another host of the site comes first).
        for (const secret of cookieValues(request.headers.get("cookie"), SESSION_COOKIE)) if (secret) await access.sessions.remove(secret);
        set.status = 204;
        set.headers["set-cookie"] = sessionCookie("", 0, isHttps(request.url, request.headers));
        set.headers["cache-control"] = "no-store";
      },
      {
        detail: {
          security: OPEN_SECURITY,
          operationId: "signOut",
          tags: ["access"],
          summary: "Sign out",
          description: "Ends the session on every server at once and clears the cookie. 204 whether or not a session was open.",
          responses: { 204: { description: "Signed out" } },
        },
      },
    );
}
