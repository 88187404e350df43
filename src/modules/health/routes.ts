/**
 * `/health`: liveness (the process answers). `/ready`: readiness for a load balancer: 200 while
 * the database and storage answer and the server is not draining, 503 otherwise.
 *
 * The running server answers both with native Bun routes (./native.ts), so that a WORKERS child
 * polled by a load balancer does not build the Elysia app for it; these Elysia routes send the
 * same answers (./answers.ts) under `app.handle()` and document them in OpenAPI.
 */
import { Elysia, t } from "elysia";
import { OPEN_SECURITY } from "../../access/plugin.ts";
import { healthAnswer, readyAnswer, type Readiness } from "./answers.ts";

export type { CheckResult, Readiness } from "./answers.ts";

const HealthSchema = t.Object({ status: t.Literal("ok") }, { description: "The process answers" });

const ReadySchema = t.Object(
  {
    status: t.Literal("ready"),
    checks: t.Record(t.String(), t.String(), { description: "Each dependency: `ok`, or what is wrong", examples: [{ database: "ok", storage: "ok" }] }),
  },
  { description: "Ready for traffic" },
);

export function healthRoutes(readiness: Readiness) {
  return new Elysia({ name: "spool.health" })
    .get("/health", healthAnswer, {
      detail: {
        operationId: "health",
        tags: ["operations"],
        summary: "Liveness probe",
        security: OPEN_SECURITY,
        responses: { 200: { description: "The process answers", content: { "application/json": { schema: HealthSchema } } } },
      },
    })
    .get(
      "/ready",
      () => readyAnswer(readiness),
      {
        detail: {
          operationId: "ready",
          tags: ["operations"],
          summary: "Readiness probe",
          description: "200 while the database and the media storage answer and the server is not shutting down; 503 (`draining` or `not_ready`, with each check's state) otherwise. Point a load balancer's health check here.",
          security: OPEN_SECURITY,
          responses: {
            200: { description: ReadySchema.description!, content: { "application/json": { schema: ReadySchema } } },
            503: { description: "Draining, or a dependency does not answer" },
          },
        },
      },
    );
}
