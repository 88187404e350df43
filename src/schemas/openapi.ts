/**
 * Helpers for describing routes whose responses Elysia's `response` option cannot express
 * (binary bodies, 204/206/304 without JSON, tus headers): OpenAPI objects built from `t` schemas.
 */
import { Type, type IntegerOptions } from "@sinclair/typebox";
import type { TSchema } from "elysia";

/**
 * A plain JSON integer, for responses. Elysia's `t.Integer` also accepts numeric strings (right
 * for query strings and params, which it coerces) and is described as such; a response field
 * is simply an integer. `Type` is the TypeBox that Elysia's `t` extends (its peer dependency).
 */
export const Integer = (options?: IntegerOptions) => Type.Integer(options);

/**
 * A query parameter of Elysia's `t.Integer` or `t.Numeric` (which accept numeric strings, as a
 * query needs), documented as the number it is: the plugin writes their string branch with a
 * `default` of 0, which is invalid on a string. For `moreDocs` parameters, which replace the
 * generated ones; validation stays the route's.
 */
export function numericQueryParameter(name: string, schema: TSchema): { name: string; in: "query"; required: false; description?: string; schema: object } {
  const number = (schema.anyOf as TSchema[] | undefined)?.find((branch) => branch.type !== "string") ?? schema;
  return { name, in: "query", required: false, description: number.description, schema: number };
}

/**
 * The request headers the file engine (src/files/serve.ts) reads, for every route it serves:
 * the stream, static files, the HLS ladder, thumbnails.
 */
export const FILE_REQUEST_HEADERS = [
  { name: "Range", in: "header", required: false, description: "`bytes=` ranges (RFC 9110 §14.1.2); up to 64 range-specs", schema: Type.String({ examples: ["bytes=0-1048575"] }) },
  { name: "If-Range", in: "header", required: false, description: "Honour Range only if this validator still matches", schema: Type.String() },
  { name: "If-None-Match", in: "header", required: false, description: "304 when it matches the ETag (weak comparison)", schema: Type.String() },
  { name: "If-Modified-Since", in: "header", required: false, description: "304 when not modified since (ignored with If-None-Match)", schema: Type.String() },
  { name: "If-Match", in: "header", required: false, description: "412 unless it matches the ETag (strong comparison)", schema: Type.String() },
  { name: "If-Unmodified-Since", in: "header", required: false, description: "412 when modified since (ignored with If-Match)", schema: Type.String() },
];

/** `{ "application/json": { schema } }` with the schema's own examples lifted to the media type. */
export function jsonContent(schema: TSchema): Record<string, { schema: object; example?: unknown }> {
  const example = (schema.examples as unknown[] | undefined)?.[0];
  return { "application/json": { schema, ...(example === undefined ? {} : { example }) } };
}

/** A 206 for several ranges (the file engine's): one part per range, and no Content-Range of its own. */
export const BYTERANGES_CONTENT = {
  "multipart/byteranges": { schema: Type.String({ format: "binary", description: "One part per range, each with Content-Type and Content-Range" }) },
};

/** A response header documented with a `t` schema. */
export function header(schema: TSchema, required = false): { schema: object; description?: string; required?: boolean } {
  return { schema, description: schema.description, ...(required ? { required } : {}) };
}

/**
 * Where a route that declares `response` or `params`/`query` documents what those cannot say: a
 * 304 it sends as a prepared Response, the headers it reads, its HEAD. @elysiajs/openapi 1.4.16
 * sets `responses` and `parameters` of such an operation from the schemas alone, dropping those
 * of `detail`, writes a bodiless schema (`t.Void`) as invalid `content`, and documents HEAD only
 * for routes registered with `.head()` (the native routes answer it for GET ones); so these
 * travel in `detail` under an extension key and the spec route merges them back
 * (`mergeRouteDocs`, called by src/modules/openapi/plugin.ts).
 */
export const MORE_DOCS = "x-spool-docs";

export interface MoreDocs {
  /** Merged with the generated ones: a status on both sides keeps the generated body and gains these headers. */
  responses?: Record<string, object>;
  /** Replace generated parameters of the same `in` and `name` (theirs have no descriptions), else added. */
  parameters?: { name: string; in: string }[];
  /** A HEAD operation beside this GET: the same parameters and statuses, no bodies. */
  head?: { operationId: string; summary: string; description?: string };
}

export function moreDocs(extra: MoreDocs): Record<string, unknown> {
  return { [MORE_DOCS]: extra };
}

/** The responses of a HEAD: a GET's statuses and headers, no body (RFC 9110 §9.3.2). */
export function withoutBodies<R extends object>(responses: Record<string, R>): Record<string, Omit<R, "content">> {
  return Object.fromEntries(
    Object.entries(responses).map(([status, response]) => {
      const { content: _content, ...rest } = response as R & { content?: unknown };
      return [status, rest];
    }),
  );
}

type Operation = Record<string, unknown> & { responses?: Record<string, object>; parameters?: { name: string; in: string }[] };

/** Merges `moreDocs` back into each operation and drops the key (idempotent). */
export function mergeRouteDocs(doc: { paths?: Record<string, Record<string, unknown>> }): void {
  for (const item of Object.values(doc.paths ?? {})) {
    for (const value of Object.values(item)) {
      if (typeof value !== "object" || value === null || !(MORE_DOCS in value)) continue;
      const operation = value as Operation;
      const extra = operation[MORE_DOCS] as MoreDocs;
      delete operation[MORE_DOCS];
      if (extra.responses) {
        const generated = operation.responses ?? {};
        const merged: Record<string, object> = { ...extra.responses, ...generated };
        for (const status of Object.keys(extra.responses)) {
          const mine = extra.responses[status] as { headers?: object };
          const theirs = generated[status] as { headers?: object } | undefined;
          if (theirs && mine.headers) merged[status] = { ...theirs, headers: { ...mine.headers, ...theirs.headers } };
        }
        operation.responses = merged;
      }
      if (extra.parameters) {
        const key = (p: { name: string; in: string }) => `${p.in}:${p.name.toLowerCase()}`;
        const documented = new Map(extra.parameters.map((p) => [key(p), p]));
        const kept = (operation.parameters ?? []).map((p) => documented.get(key(p)) ?? p);
        const keys = new Set(kept.map(key));
        operation.parameters = [...kept, ...extra.parameters.filter((p) => !keys.has(key(p)))];
      }
      if (extra.head && !item.head) {
        item.head = { ...operation, description: "The same status and headers as GET, without a body.", ...extra.head, responses: withoutBodies(operation.responses ?? {}) };
      }
    }
  }
}
