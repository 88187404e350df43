/**
 * The queue's claim, the one step whose SQL must differ between the dialects: take the next
 * runnable job (queued and due, or running with a stale heartbeat and attempts left) so that
 * no two workers ever get the same one, whichever machine they run on.
 */
import { and, asc, eq, inArray, lt, lte, or, sql, type AnyColumn, type SQL } from "drizzle-orm";
import { postgresOf, type SpoolDb } from "../db/client.ts";
import type { JobKind, JobRow } from "../db/schema.ts";

/** A time as the queue writes and compares it: a value, or SQL the database evaluates (its clock). */
export type Moment = Date | SQL;

export interface ClaimRequest {
  workerId: string;
  kinds: readonly JobKind[];
  now: Moment;
  /** Running jobs whose heartbeat is older than this are up for takeover (null: none is). */
  stale: Moment | null;
  maxAttempts: number;
}

export function claimNext(handle: SpoolDb, request: ClaimRequest): Promise<JobRow | null> {
  return handle.dialect === "postgres" ? claimPostgres(handle, request) : Promise.resolve(claimSqlite(handle, request));
}

/**
 * SQLite: select and update in one IMMEDIATE transaction, which takes the database's single
 * write lock first, so two processes' claims run one after the other. Synchronous on purpose:
 * bun:sqlite is, and nothing else may run on this connection inside the transaction.
 */
function claimSqlite(handle: SpoolDb, { workerId, kinds, now, stale, maxAttempts }: ClaimRequest): JobRow | null {
  const { db, tables } = handle;
  const { jobs } = tables;
  return db.transaction(
    (tx) => {
      const candidate = tx
        .select({ id: jobs.id })
        .from(jobs)
        .where(runnable(jobs, kinds, now, stale, maxAttempts))
        .orderBy(asc(jobs.runAfter), asc(jobs.id))
        .limit(1)
        .get();
      if (!candidate) return null;
      return (
        tx
          .update(jobs)
          .set({ state: "running", lockedBy: workerId, heartbeatAt: now, attempts: sql`${jobs.attempts} + 1`, updatedAt: now })
          .where(eq(jobs.id, candidate.id))
          .returning()
          .get() ?? null
      );
    },
    { behavior: "immediate" },
  );
}

/**
 * PostgreSQL: one statement. `FOR UPDATE SKIP LOCKED` lets concurrent claims each lock a
 * different candidate instead of queueing behind (or both taking) the first.
 */
async function claimPostgres(handle: SpoolDb, { workerId, kinds, now, stale, maxAttempts }: ClaimRequest): Promise<JobRow | null> {
  const { db, tables } = postgresOf(handle);
  const { jobs } = tables;
  const next = db
    .select({ id: jobs.id })
    .from(jobs)
    .where(runnable(jobs, kinds, now, stale, maxAttempts))
    .orderBy(asc(jobs.runAfter), asc(jobs.id))
    .limit(1)
    .for("update", { skipLocked: true });
  const [job] = await db
    .update(jobs)
    .set({ state: "running", lockedBy: workerId, heartbeatAt: now, attempts: sql`${jobs.attempts} + 1`, updatedAt: now })
    .where(inArray(jobs.id, next))
    .returning();
  return (job as JobRow | undefined) ?? null;
}

/** Queued and due, or running with a stale heartbeat and attempts left; of the given kinds. */
function runnable(jobs: Record<"kind" | "state" | "runAfter" | "heartbeatAt" | "attempts", AnyColumn>, kinds: readonly JobKind[], now: Moment, stale: Moment | null, maxAttempts: number) {
  return and(
    inArray(jobs.kind, [...kinds]),
    lt(jobs.attempts, maxAttempts),
    stale ? or(and(eq(jobs.state, "queued"), lte(jobs.runAfter, now)), and(eq(jobs.state, "running"), lt(jobs.heartbeatAt, stale))) : and(eq(jobs.state, "queued"), lte(jobs.runAfter, now)),
  );
}
