/** Database URLs: which ones name PostgreSQL, and how to show one without its password. Pure. */

/** `postgres://user:pass@host/db` and its `postgresql://` spelling: src/db/client.ts opens these with PostgreSQL. */
export const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/** The text with the password of any `scheme://user:password@` in it replaced by `***`: for messages. */
export function redactUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:@/?#\s]*:)[^@/?#\s]*@/gi, "$1***@");
}

/** The SQLite file a database URL names (`file:<path>`, a bare path), or null for PostgreSQL and `:memory:`. */
export function sqlitePath(url: string): string | null {
  if (POSTGRES_URL.test(url)) return null;
  const path = url.startsWith("file:") ? url.slice("file:".length) : url;
  return path === ":memory:" ? null : path;
}
