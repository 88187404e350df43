import { Elysia, t } from "elysia";

export function healthRoutes() {
  return new Elysia({ name: "spool.health" }).get("/health", () => ({ status: "ok" as const }), {
    response: t.Object({ status: t.Literal("ok") }),
    detail: { summary: "Liveness probe" },
  });
}
