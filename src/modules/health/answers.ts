/**
 * What `/health` and `/ready` answer, without Elysia: the native routes (./native.ts) and the
 * Elysia routes that document them (./routes.ts) send these same responses.
 */
import { errorBody, JSON_TYPE } from "../../http/errors.ts";

export type CheckResult = "ok" | string;

export interface Readiness {
  /** True from the first shutdown signal on. */
  draining(): boolean;
  /** Each dependency's state: "ok" or what is wrong with it. */
  checks(): Promise<Record<string, CheckResult>>;
}

/** A Readiness over named probes: a probe that throws (or rejects) reports its message. */
export function readiness(draining: () => boolean, probes: Record<string, () => unknown>): Readiness {
  const run = async (probe: () => unknown): Promise<CheckResult> => {
    try {
      await probe();
      return "ok";
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  };
  const names = Object.keys(probes);
  return {
    draining,
    async checks() {
      const states = await Promise.all(names.map((name) => run(probes[name]!)));
      return Object.fromEntries(names.map((name, i) => [name, states[i]!]));
    },
  };
}

const HEADERS = { "content-type": JSON_TYPE, "cache-control": "no-store" };
const HEALTHY = JSON.stringify({ status: "ok" });

/** Liveness: the process answers. Never cached by a proxy. */
export function healthAnswer(): Response {
  return new Response(HEALTHY, { headers: HEADERS });
}

/** Readiness: 200 with each check, or 503 `draining` / `not_ready` with each check's state. */
export async function readyAnswer(state: Readiness): Promise<Response> {
  const checks = await state.checks();
  if (state.draining()) return new Response(JSON.stringify({ ...errorBody("draining", "The server is shutting down"), checks }), { status: 503, headers: HEADERS });
  const failing = Object.entries(checks).filter(([, check]) => check !== "ok");
  if (failing.length) {
    const message = failing.map(([name, check]) => `${name}: ${check}`).join("; ");
    return new Response(JSON.stringify({ ...errorBody("not_ready", message), checks }), { status: 503, headers: HEADERS });
  }
  return new Response(JSON.stringify({ status: "ready", checks }), { headers: HEADERS });
}
