/**
 * What `/health` and `/ready` answer, without Elysia: the native routes (./native.ts) and the
 * Elysia routes that document them (./routes.ts) send these same responses.
 */
import { errorBody, JSON_TYPE } from "../../http/errors.ts";
import { logger } from "../../lib/log.ts";

const log = logger("health");

/** What an open /ready says of a failing dependency: its error (a database URL's host, a driver's text) goes to the log only. */
export const UNAVAILABLE = "unavailable";

export type CheckResult = "ok" | string;

export interface Readiness {
  /** True from the first shutdown signal on. */
  draining(): boolean;
  /** Each dependency's state: "ok" or what is wrong with it. */
  checks(): Promise<Record<string, CheckResult>>;
}

/** How long /ready waits for a dependency before calling it down. */
export const READY_CHECK_TIMEOUT_MS = 2000;

/**
 * A Readiness over named probes: a probe that throws (or rejects) reports `unavailable` (its
 * message is logged as a warning, once until it changes or the probe recovers: /ready is open,
 * and a driver's error names internal hosts), one that has not answered within `timeoutMs`
 * reports that. /ready is open to anyone and a load
 * balancer polls it, so each probe runs at most once at a time: requests arriving while it runs
 * share its outcome. A frozen database then costs one pending query, however many ask, and
 * every answer still comes within `timeoutMs`.
 */
export function readiness(draining: () => boolean, probes: Record<string, () => unknown>, timeoutMs = READY_CHECK_TIMEOUT_MS): Readiness {
  const running = new Map<string, Promise<CheckResult>>();
  const logged = new Map<string, string>();
  const run = (name: string): Promise<CheckResult> => {
    let outcome = running.get(name);
    if (outcome === undefined) {
      outcome = (async () => {
        try {
          await probes[name]!();
          logged.delete(name);
          return "ok";
        } catch (error) {
          const detail = error instanceof Error ? error.message : String(error);
          if (logged.get(name) !== detail) {
            logged.set(name, detail);
            log.warn({ check: name, error: detail }, "a readiness check failed");
          }
          return UNAVAILABLE;
        }
      })().finally(() => running.delete(name));
      running.set(name, outcome);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<CheckResult>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
    });
    return Promise.race([outcome, late]).finally(() => clearTimeout(timer));
  };
  const names = Object.keys(probes);
  return {
    draining,
    async checks() {
      const states = await Promise.all(names.map(run));
      return Object.fromEntries(names.map((name, i) => [name, states[i]!]));
    },
  };
}

const HEADERS = { "content-type": JSON_TYPE, "cache-control": "no-store", "x-content-type-options": "nosniff" };
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
