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

/** `{ "application/json": { schema } }` with the schema's own examples lifted to the media type. */
export function jsonContent(schema: TSchema): Record<string, { schema: object; example?: unknown }> {
  const example = (schema.examples as unknown[] | undefined)?.[0];
  return { "application/json": { schema, ...(example === undefined ? {} : { example }) } };
}

/** A response header documented with a `t` schema. */
export function header(schema: TSchema, required = false): { schema: object; description?: string; required?: boolean } {
  return { schema, description: schema.description, ...(required ? { required } : {}) };
}
