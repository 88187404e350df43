/**
 * Whether an error means the database cannot be reached right now (as opposed to a query that
 * is wrong): PostgreSQL refusing, dropping or timing out connections (Bun.SQL's
 * `ERR_POSTGRES_CONNECTION_*` codes, or the socket's own), a query past its deadline
 * (./deadline.ts), or SQLite still locked after its busy timeout. Those are answered 503 with
 * Retry-After, like a bucket that does not answer, not as a 500 (our bug). Drizzle wraps a driver's error in its own (`cause`), so the chain is walked. Pure.
 */
import { QUERY_TIMEOUT_CODE } from "./deadline.ts";

const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH"]);
const POSTGRES_CODES = new Set(["ERR_POSTGRES_IDLE_TIMEOUT", "ERR_POSTGRES_LIFETIME_TIMEOUT", QUERY_TIMEOUT_CODE]);

/**
 * The driver's own error behind Drizzle's "Failed query: <the SQL> params: ...", which says what
 * was asked, not what went wrong (for messages); any other error as it is.
 */
export function driverError(error: unknown): unknown {
  const { message, cause } = (error ?? {}) as { message?: unknown; cause?: unknown };
  return typeof message === "string" && message.startsWith("Failed query:") && cause !== undefined ? cause : error;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== null && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") {
      if (code.startsWith("ERR_POSTGRES_CONNECTION") || POSTGRES_CODES.has(code) || SOCKET_CODES.has(code)) return true;
      if (code === "SQLITE_BUSY" || code.startsWith("SQLITE_BUSY_")) return true;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
