/** Looks into a test server's database, whichever dialect it runs on. */
import type { SpoolDb } from "../../src/db/client.ts";

/** Every row of every table, in a stable order: equal snapshots mean nothing was written. */
export async function allRows(handle: SpoolDb): Promise<string> {
  const out: Record<string, string[]> = {};
  for (const [name, table] of Object.entries(handle.tables)) {
    const rows = (await handle.db.select().from(table as typeof handle.tables.videos)) as unknown[];
    out[name] = rows.map((r) => JSON.stringify(r)).sort();
  }
  return JSON.stringify(out);
}
