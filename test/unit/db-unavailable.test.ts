/** Which errors mean "the database cannot be reached" (503), and which are our bugs (500). */
import { describe, expect, test } from "bun:test";
import { isDatabaseUnavailable } from "../../src/db/unavailable.ts";
import { QueryTimeout } from "../../src/db/deadline.ts";

const coded = (code: string, cause?: unknown) => Object.assign(new Error(code), { code }, cause === undefined ? {} : { cause });

describe("isDatabaseUnavailable", () => {
  test.each([
    ["Bun.SQL: connection refused", coded("ERR_POSTGRES_CONNECTION_REFUSED"), true],
    ["Bun.SQL: connection closed", coded("ERR_POSTGRES_CONNECTION_CLOSED"), true],
    ["Bun.SQL: connection timeout", coded("ERR_POSTGRES_CONNECTION_TIMEOUT"), true],
    ["Bun.SQL: idle timeout", coded("ERR_POSTGRES_IDLE_TIMEOUT"), true],
    ["a socket error", coded("ECONNRESET"), true],
    ["a query past DATABASE_QUERY_TIMEOUT_MS", new QueryTimeout(10_000), true],
    ["that, wrapped by Drizzle", new Error("Failed query: select 1", { cause: new QueryTimeout(10_000) }), true],
    ["SQLite locked past its busy timeout", coded("SQLITE_BUSY"), true],
    ["SQLite busy, extended code", coded("SQLITE_BUSY_SNAPSHOT"), true],
    ["wrapped by Drizzle (Failed query: ..., cause)", new Error("Failed query: select 1", { cause: coded("ERR_POSTGRES_CONNECTION_CLOSED") }), true],
    ["a query the server refused (syntax)", coded("ERR_POSTGRES_SERVER_ERROR"), false],
    ["a constraint", coded("SQLITE_CONSTRAINT_UNIQUE"), false],
    ["a plain error", new Error("boom"), false],
    ["not an error", "ECONNRESET", false],
    ["null", null, false],
  ] as const)("%s → %p", (_name, error, expected) => expect(isDatabaseUnavailable(error)).toBe(expected));
});
