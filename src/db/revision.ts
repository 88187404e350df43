/**
 * The list cache's freshness check, one small function per dialect: a token that changes
 * whenever the videos a cached page shows may have changed. Equal tokens mean the page can be
 * served again without a query (src/modules/videos/list-cache.ts).
 */
import type { Database } from "bun:sqlite";

export type Revision = () => string;

/**
 * SQLite: exact. `data_version` moves with every commit by another connection (other processes
 * included) and `total_changes()` with every row this connection writes. About 4 µs, no I/O.
 */
export function sqliteRevision(sqlite: Database): Revision {
  // Two statements: the pragma alone is cheaper than its table-valued form in one select.
  const external = sqlite.prepare<[number], []>("PRAGMA data_version");
  const local = sqlite.prepare<[number], []>("SELECT total_changes()");
  return () => `${external.values()[0]![0]}.${local.values()[0]![0]}`;
}

/**
 * PostgreSQL: a counter bumped by this process's own writes and by every change another
 * process announces (NOTIFY, see client.ts), and by a reconnect of the listener (whatever was
 * announced while it was down is lost). No round-trip per request; another server's write is
 * seen as soon as its notification arrives (milliseconds after its commit).
 */
export function postgresRevision(): Revision & { bump(): void } {
  let counter = 0;
  return Object.assign(() => String(counter), { bump: () => void counter++ });
}
