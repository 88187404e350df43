/**
 * The two schema twins (src/db/schema/sqlite.ts, src/db/schema/pg.ts) must not drift: the same
 * tables, columns with the same names, the same types as the application sees them (string,
 * number, Date), nullability, defaults and enum values, the same primary and foreign keys, and
 * the same indexes (columns, uniqueness, partial predicates).
 */
import { describe, expect, test } from "bun:test";
import { getTableName, is, type SQL } from "drizzle-orm";
import { PgDialect, getTableConfig as pgConfig, PgTable } from "drizzle-orm/pg-core";
import { SQLiteSyncDialect, getTableConfig as sqliteConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import * as pg from "../../src/db/schema/pg.ts";
import * as sqlite from "../../src/db/schema/sqlite.ts";

const pgDialect = new PgDialect();
const sqliteDialect = new SQLiteSyncDialect();

interface Shape {
  columns: Record<string, unknown>;
  primaryKey: string[];
  foreignKeys: unknown[];
  indexes: Record<string, unknown>;
}

function defaultOf(value: unknown): unknown {
  return value && typeof value === "object" && "queryChunks" in value ? "<sql>" : value;
}

function shapeOf(config: ReturnType<typeof pgConfig> | ReturnType<typeof sqliteConfig>, render: (s: SQL) => string): Shape {
  const columns: Record<string, unknown> = {};
  for (const c of config.columns) {
    columns[c.name] = {
      // What the application gets back: "string", "number", "date"...
      type: c.dataType,
      notNull: c.notNull,
      hasDefault: c.hasDefault,
      default: defaultOf(c.default),
      enum: c.enumValues ?? null,
      unique: c.isUnique,
    };
  }
  const primaryKey = config.columns.filter((c) => c.primary).map((c) => c.name);
  const foreignKeys = config.foreignKeys.map((fk) => {
    const ref = fk.reference();
    return { columns: ref.columns.map((c) => c.name), table: getTableName(ref.foreignTable), foreign: ref.foreignColumns.map((c) => c.name), onDelete: fk.onDelete };
  });
  const indexes: Record<string, unknown> = {};
  for (const i of config.indexes) {
    const cfg = i.config as { name: string; columns: { name?: string }[]; unique: boolean; where?: SQL };
    indexes[cfg.name] = { columns: cfg.columns.map((c) => c.name), unique: cfg.unique, where: cfg.where ? render(cfg.where) : null };
  }
  return { columns, primaryKey, foreignKeys, indexes };
}

const pgTables = Object.values(pg).filter((t) => is(t, PgTable)) as PgTable[];
const sqliteTables = Object.values(sqlite).filter((t) => is(t, SQLiteTable)) as SQLiteTable[];

test("the same tables, exported under the same names", () => {
  expect(pgTables.map(getTableName).sort()).toEqual(sqliteTables.map(getTableName).sort());
  const names = (m: object, kind: typeof PgTable | typeof SQLiteTable) => Object.entries(m).filter(([, t]) => is(t, kind)).map(([k]) => k).sort();
  expect(names(pg, PgTable)).toEqual(names(sqlite, SQLiteTable));
  expect(pgTables.length).toBeGreaterThanOrEqual(4);
});

describe("every table is the same in both dialects", () => {
  for (const table of sqliteTables) {
    const name = getTableName(table);
    test(name, () => {
      const twin = pgTables.find((t) => getTableName(t) === name)!;
      const a = shapeOf(sqliteConfig(table), (s) => sqliteDialect.sqlToQuery(s).sql);
      const b = shapeOf(pgConfig(twin), (s) => pgDialect.sqlToQuery(s).sql);
      expect(b).toEqual(a);
    });
  }
});

test("the check itself sees a difference (a drifted column would fail it)", () => {
  const a = shapeOf(sqliteConfig(sqlite.videos), (s) => sqliteDialect.sqlToQuery(s).sql);
  const b = shapeOf(pgConfig(pg.videos), (s) => pgDialect.sqlToQuery(s).sql);
  const drifted = { ...b, columns: { ...b.columns, size: { ...(b.columns.size as object), notNull: false } } };
  expect(drifted).not.toEqual(a);
});
