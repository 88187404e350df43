/**
 * A JSON request body read by hand and checked against its schema, with 400s that name the
 * first problem. For routes that read their body themselves (`parse: "none"`): Elysia 1.x,
 * given `body: t.Optional(X)`, takes an unparsable body, a non-object or unknown keys for "no
 * body" and applies the defaults, so `{"playback":"signed",}` (a trailing comma) made a public
 * video. Here an empty body means the defaults only when the route says so; anything else must
 * be JSON the schema accepts. (Size: the body-limit plugin caps JSON bodies before this runs.)
 */
import { Type, type IntegerOptions, type Static, type TInteger, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { badRequest, HttpError } from "../http/errors.ts";
import { isJsonContentType } from "../http/content-type.ts";

/**
 * An integer field of a JSON body: a JSON number, as the OpenAPI document says. Elysia's
 * `t.Integer` also takes numeric strings (it is made for query strings), and a hand-read body
 * keeps them as strings: `{"expiresIn": "5"}` reached jose as "5" and answered 500.
 */
export function JsonInteger(options: IntegerOptions & { error?: string }): TInteger {
  return Type.Integer(options);
}

export interface JsonBodyOptions {
  /** An empty body (or none) is allowed: the answer is then undefined. */
  optional?: boolean;
  /** What to send, appended to a schema refusal: `send {"url": ...}`. */
  usage: string;
}

export async function readJsonBody<S extends TSchema>(request: Request, schema: S, options: JsonBodyOptions & { optional: true }): Promise<Static<S> | undefined>;
export async function readJsonBody<S extends TSchema>(request: Request, schema: S, options: JsonBodyOptions): Promise<Static<S>>;
export async function readJsonBody<S extends TSchema>(request: Request, schema: S, { optional = false, usage }: JsonBodyOptions): Promise<Static<S> | undefined> {
  let text: string;
  try {
    text = await request.text();
  } catch {
    // The client hung up before its body ended (Bun 1.4.5: "The connection was closed."): not a
    // fault of ours, and nobody reads the answer (nginx's 499, as a tus PATCH cut short gets).
    throw new HttpError(499, "client_closed_request", "The client closed the connection before its body ended");
  }
  if (text.trim() === "") {
    if (optional) return undefined;
    throw badRequest(`The request has no body (${usage})`);
  }
  if (!isJsonContentType(request.headers.get("content-type"))) {
    throw new HttpError(415, "unsupported_media_type", `Send the body as application/json (${usage})`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badRequest("The request body is not valid JSON");
  }
  if (!Value.Check(schema, body)) {
    const first = Value.Errors(schema, body).First();
    // A field's own `error` text (as Elysia shows it) says more than TypeBox's generic message.
    const own = first?.schema.error;
    if (typeof own === "string") throw badRequest(own);
    const where = first?.path ? `body ${first.path.replace(/^\//, "").replaceAll("/", ".")}` : "body";
    throw badRequest(`${where}: ${first?.message ?? "not what this route accepts"} (${usage})`);
  }
  // What the schema says it is: a transform (an Elysia type) gives its decoded value.
  return Value.Decode(schema, body);
}
