/**
 * `/health`: liveness (the process answers). `/ready`: readiness for a load balancer: 200 while
 * the database and storage answer and the server is not draining, 503 otherwise.
 */
import { Elysia, t } from "elysia";
import { OPEN_SECURITY } from "../../access/plugin.ts";
import { errorBody, JSON_TYPE } from "../../http/errors.ts";

export type CheckResult = "ok" | string;

export interface Readiness {
  /** True from the first shutdown signal on. */
  draining(): boolean;
  /** Each dependency's state: "ok" or what is wrong with it. */
  checks(): Promise<Record<string, CheckResult>>;
}

const ReadySchema = t.Object(
  {
    status: t.Literal("ready"),
    checks: t.Record(t.String(), t.String(), { description: "Each dependency: `ok`, or what is wrong", examples: [{ database: "ok", storage: "ok" }] }),
  },
  { description: "Ready for traffic" },
);

export function healthRoutes(readiness: Readiness) {
  return new Elysia({ name: "spool.health" })
    .get("/health", () => ({ status: "ok" as const }), {
      response: t.Object({ status: t.Literal("ok") }),
      detail: { summary: "Liveness probe", tags: ["operations"], security: OPEN_SECURITY },
    })
    .get(
      "/ready",
      async () => {
        const checks = await readiness.checks();
        const failing = Object.entries(checks).filter(([, state]) => state !== "ok");
        const headers = { "content-type": JSON_TYPE, "cache-control": "no-store" };
        if (readiness.draining()) return new Response(JSON.stringify({ ...errorBody("draining", "The server is shutting down"), checks }), { status: 503, headers });
        if (failing.length) {
          const message = failing.map(([name, state]) => `${name}: ${state}`).join("; ");
          return new Response(JSON.stringify({ ...errorBody("not_ready", message), checks }), { status: 503, headers });
        }
        return new Response(JSON.stringify({ status: "ready", checks }), { headers });
      },
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
