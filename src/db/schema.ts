/**
 * The schema as services see it. Services are written once for both dialects: they use the
 * table objects of the open database (`SpoolDb.tables`, from ./schema/sqlite.ts or
 * ./schema/pg.ts), typed by the SQLite twin, and only builders both dialects run. The parity
 * test keeps the two twins identical in everything those types describe.
 */
import type * as sqlite from "./schema/sqlite.ts";

export * from "./schema/shared.ts";

export type Tables = Pick<typeof sqlite, "videos" | "jobs" | "sessions" | "directUploads" | "library">;
export type VideoRow = typeof sqlite.videos.$inferSelect;
export type NewVideoRow = typeof sqlite.videos.$inferInsert;
export type JobRow = typeof sqlite.jobs.$inferSelect;
export type DirectUploadRow = typeof sqlite.directUploads.$inferSelect;
