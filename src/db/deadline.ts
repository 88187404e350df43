/**
 * A deadline on every query services send to PostgreSQL. Bun.SQL (1.4.5) has none of its own:
 * `connectionTimeout` bounds only connecting, so a server that stalls without refusing (a
 * stopped process, a partition) holds a query, and the request waiting on it, until the kernel
 * gives up on the socket, many minutes later. Past the deadline the query is cancelled (one that
 * was not sent yet never runs; a running one gets PostgreSQL's cancel request) and its caller
 * gets a `QueryTimeout`, which the routes answer as 503 `database_unavailable`
 * (./unavailable.ts). A connection still stuck keeps its place in the pool until the server
 * answers or the socket dies; later queries that wait for a connection meet the same deadline.
 *
 * Only what Drizzle's bun-sql session calls is wrapped: `unsafe(query, params)`, awaited or
 * `.values()`. Transactions (`begin`) pass through unbounded: services run none on PostgreSQL
 * (the queue's claim is one statement), and migrations use the raw client.
 */
import type { SQL } from "bun";

/** DATABASE_QUERY_TIMEOUT_MS's default: a healthy server answers Spool's queries in milliseconds. */
export const DEFAULT_QUERY_TIMEOUT_MS = 10_000;

/** The code `isDatabaseUnavailable` knows a timed-out query by. */
export const QUERY_TIMEOUT_CODE = "ERR_SPOOL_QUERY_TIMEOUT";

export class QueryTimeout extends Error {
  readonly code = QUERY_TIMEOUT_CODE;
  constructor(ms: number) {
    super(`the database did not answer within ${ms} ms`);
  }
}

/** The query's result, or a QueryTimeout once `ms` have passed (the query is then cancelled). */
export function withinDeadline<T>(query: SQL.Query<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      query.cancel();
      reject(new QueryTimeout(ms));
    }, ms);
    query.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** What Drizzle's session reads of a query: awaited, or `.values()` then awaited. */
interface BoundedQuery<T> extends PromiseLike<T> {
  values(): Promise<unknown[][]>;
}

/** `client` for Drizzle, with every `unsafe` query under a deadline of `ms`. */
export function boundedClient(client: SQL, ms: number): SQL {
  const bounded = {
    unsafe<T>(query: string, params?: unknown[]): BoundedQuery<T> {
      const pending = client.unsafe<T>(query, params);
      return {
        values: () => withinDeadline(pending.values() as SQL.Query<unknown[][]>, ms),
        then: (onResolved, onRejected) => withinDeadline(pending, ms).then(onResolved, onRejected),
      };
    },
    begin: client.begin.bind(client),
  };
  return bounded as unknown as SQL;
}
