/** OpenAPI schemas of the one error shape (src/http/errors.ts), shared by every route's docs. */
import { t } from "elysia";

export const ErrorSchema = t.Object(
  {
    error: t.Object({
      code: t.String({ description: "Stable, machine-readable code", examples: ["not_found"] }),
      message: t.String({ description: "Human-readable explanation; may change between versions", examples: ["No video with id q7cN0l1dQ5m0tS9xYk3eZA"] }),
    }),
  },
  { description: "Every error Spool returns has this shape", examples: [{ error: { code: "not_found", message: "No video with id q7cN0l1dQ5m0tS9xYk3eZA" } }] },
);

/** An error response with its own description (the shape is always ErrorSchema's). */
export function errorSchema(description: string, code: string, message: string) {
  return t.Object(
    {
      error: t.Object({
        code: t.String({ description: "Stable, machine-readable code", examples: [code] }),
        message: t.String({ description: "Human-readable explanation; may change between versions", examples: [message] }),
      }),
    },
    { description, examples: [{ error: { code, message } }] },
  );
}
