import { Elysia, t } from "elysia";
import { OPEN_SECURITY } from "../../access/plugin.ts";

export function healthRoutes() {
  return new Elysia({ name: "spool.health" }).get("/health", () => ({ status: "ok" as const }), {
    response: t.Object({ status: t.Literal("ok") }),
    detail: { summary: "Liveness probe", security: OPEN_SECURITY },
  });
}
