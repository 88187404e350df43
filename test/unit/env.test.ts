import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { loadConfig } from "../../src/load-config.ts";
import { ConfigError, ENV, envTable, MAX_CLOCK_SPAN_MS, MAX_MEMORY_CACHE_BYTES, MAX_TIMER_MS, readEnv } from "../../src/env.ts";

describe("the README's configuration table", () => {
  test("is exactly the declarations (run `bun -e 'console.log((await import(\"./src/env.ts\")).envTable())'` to regenerate)", async () => {
    const readme = await Bun.file(resolve(import.meta.dir, "../../README.md")).text();
    const section = readme.slice(readme.indexOf("## Configuration"));
    const table = section
      .split("\n")
      .slice(1)
      .filter((line, i, lines) => line.startsWith("|") && lines.slice(0, i).every((l) => l.startsWith("|") || l.trim() === ""))
      .join("\n");
    expect(table).toBe(envTable());
  });

  test("names every variable the code reads", async () => {
    const glob = new Bun.Glob("src/**/*.ts");
    const read = new Set<string>();
    for await (const file of glob.scan({ cwd: resolve(import.meta.dir, "../..") })) {
      const source = await Bun.file(resolve(import.meta.dir, "../..", file)).text();
      for (const m of source.matchAll(/(?:process\.env|env)\.([A-Z][A-Z0-9_]+)/g)) read.add(m[1]!);
    }
    // Internal: how the primary tells a WORKERS child its number; PATH for spawned tools.
    for (const internal of ["SPOOL_WORKER_ID", "PATH"]) read.delete(internal);
    expect([...read].filter((name) => !(name in ENV))).toEqual([]);
  });
});

describe("readEnv", () => {
  const ok: [string, Record<string, string>, Partial<Record<keyof typeof ENV, unknown>>][] = [
    ["nothing set: the defaults", {}, { PORT: 3000, SEED_DEMO: true, CORS_ORIGINS: ["*"], TRANSCODE_PRESET: "veryfast", WORKERS: undefined, API_KEY: undefined }],
    ["empty means unset", { PORT: "", SEED_DEMO: "" }, { PORT: 3000, SEED_DEMO: true }],
    ["integers", { PORT: "0", MAX_UPLOAD_BYTES: "1024", WORKERS: "4" }, { PORT: 0, MAX_UPLOAD_BYTES: 1024, WORKERS: 4 }],
    ["flags", { SEED_DEMO: "off", TRUST_PROXY: "YES", TRANSCODE_IN_SERVER: "0" }, { SEED_DEMO: false, TRUST_PROXY: true, TRANSCODE_IN_SERVER: false }],
    ["CORS lists, trailing slashes dropped", { CORS_ORIGINS: "https://a.example/, http://b.example:8080" }, { CORS_ORIGINS: ["https://a.example", "http://b.example:8080"] }],
    ["CORS none", { CORS_ORIGINS: "none" }, { CORS_ORIGINS: [] }],
    ["CORS origins without the scheme's default port, as browsers send them", { CORS_ORIGINS: "https://a.example:443, http://b.example:80, https://c.example:80, http://d.example:8080" }, { CORS_ORIGINS: ["https://a.example", "http://b.example", "https://c.example:80", "http://d.example:8080"] }],
    ["CORS origins compared as browsers send them: lower case", { CORS_ORIGINS: "https://App.Example, HTTP://B.example" }, { CORS_ORIGINS: ["https://app.example", "http://b.example"] }],
    ["enums", { DEFAULT_PLAYBACK: "signed", TRANSCODE_PRESET: "slow" }, { DEFAULT_PLAYBACK: "signed", TRANSCODE_PRESET: "slow" }],
    ["secrets", { API_KEY: "k".repeat(16), SIGNING_SECRET: "s".repeat(32) }, { API_KEY: "k".repeat(16), SIGNING_SECRET: "s".repeat(32) }],
    ["a previous signing secret", { SIGNING_SECRET_PREVIOUS: "p".repeat(32) }, { SIGNING_SECRET_PREVIOUS: "p".repeat(32) }],
  ];
  test.each(ok)("%s", (_name, env, expected) => expect(readEnv(env)).toMatchObject(expected));

  const bad: [Record<string, string>, string][] = [
    [{ PORT: "abc" }, 'PORT must be an integer >= 0 and <= 65535, got "abc"'],
    [{ PORT: "70000" }, 'PORT must be an integer >= 0 and <= 65535, got "70000"'],
    [{ PORT: "1.5" }, 'PORT must be an integer >= 0 and <= 65535, got "1.5"'],
    [{ WORKERS: "0" }, 'WORKERS must be an integer >= 1 and <= 256, got "0"'],
    [{ MAX_UPLOAD_BYTES: "-1" }, 'MAX_UPLOAD_BYTES must be an integer >= 1, got "-1"'],
    [{ SEED_DEMO: "maybe" }, 'SEED_DEMO must be one of 1, true, yes, on, 0, false, no, off, got "maybe"'],
    [{ DEFAULT_PLAYBACK: "private" }, 'DEFAULT_PLAYBACK must be one of public, signed, got "private"'],
    [{ CORS_ORIGINS: "example.com" }, "CORS_ORIGINS must be `*`, `none`, or a comma-separated list of origins like https://example.com, got \"example.com\""],
    [{ CORS_ORIGINS: ",,," }, "CORS_ORIGINS must be `*`, `none`, or a comma-separated list of origins like https://example.com, got \",,,\""],
    [{ CORS_ORIGINS: "*,https://a.example" }, "CORS_ORIGINS must be `*`, `none`, or a comma-separated list of origins like https://example.com, got \"*,https://a.example\""],
    [{ API_KEY: "short" }, "API_KEY must be at least 16 characters with no surrounding whitespace, got 5 characters"],
    // A key no Authorization: Bearer header can carry (the audit's `correct horse battery staple!`).
    [{ API_KEY: "correct horse battery staple!" }, "API_KEY must use only the characters a Bearer token may hold (A-Z a-z 0-9 - . _ ~ + /, and = at the end): no spaces or other punctuation, or no client could send it"],
    [{ API_KEY: "key-with=inside-it-0123" }, "API_KEY must use only the characters a Bearer token may hold (A-Z a-z 0-9 - . _ ~ + /, and = at the end): no spaces or other punctuation, or no client could send it"],
    [{ API_KEY: ` ${"k".repeat(20)}` }, "API_KEY must not begin or end with whitespace (a space, tab or newline), got 21 characters"],
    [{ API_KEY: ` ${"k".repeat(5)}` }, "API_KEY must be at least 16 characters with no surrounding whitespace, got 6 characters"],
    // Surrounding whitespace is named as the problem (HOST=" 127.0.0.1" was told "must be a non-empty string").
    [{ HOST: " 127.0.0.1" }, 'HOST must not begin or end with whitespace (a space, tab or newline), got " 127.0.0.1"'],
    [{ DATA_DIR: "/srv/spool\n" }, 'DATA_DIR must not begin or end with whitespace (a space, tab or newline), got "/srv/spool\\n"'],
    [{ FFMPEG_PATH: "ffmpeg " }, 'FFMPEG_PATH must not begin or end with whitespace (a space, tab or newline), got "ffmpeg "'],
    [{ S3_BUCKET: "\tvideos" }, 'S3_BUCKET must not begin or end with whitespace (a space, tab or newline), got "\\tvideos"'],
    [{ NODE_ENV: "production " }, 'NODE_ENV must not begin or end with whitespace (a space, tab or newline), got "production "'],
    [{ LOG_LEVEL: "debug " }, 'LOG_LEVEL must not begin or end with whitespace (a space, tab or newline), got "debug "'],
    [{ PORT: " 8080" }, 'PORT must not begin or end with whitespace (a space, tab or newline), got " 8080"'],
    [{ SEED_DEMO: "0 " }, 'SEED_DEMO must not begin or end with whitespace (a space, tab or newline), got "0 "'],
    [{ HOST: "  " }, 'HOST is only whitespace, got "  ": leave it empty or unset for the default'],
    [{ S3_SECRET_ACCESS_KEY: "hunter2 " }, "S3_SECRET_ACCESS_KEY must not begin or end with whitespace (a space, tab or newline), got 8 characters"],
    // Whitespace around a value that would be wrong anyway: the usual message.
    [{ PORT: " 70000" }, 'PORT must be an integer >= 0 and <= 65535, got " 70000"'],
    // The RAM tier's sketch is sized from it: 2^50 died with "RangeError: Out of memory" at start.
    [{ MEMORY_CACHE_BYTES: "1125899906842624" }, 'MEMORY_CACHE_BYTES must be an integer >= 0 and <= 1099511627776 (1 TiB), got "1125899906842624"'],
    [{ MEMORY_CACHE_BYTES: "1099511627777" }, 'MEMORY_CACHE_BYTES must be an integer >= 0 and <= 1099511627776 (1 TiB), got "1099511627777"'],
    [{ SIGNING_SECRET: "s".repeat(31) }, "SIGNING_SECRET must be at least 32 characters with no surrounding whitespace, got 31 characters"],
    [{ SIGNING_SECRET_PREVIOUS: "p".repeat(31) }, "SIGNING_SECRET_PREVIOUS must be at least 32 characters with no surrounding whitespace, got 31 characters"],
    [{ TRANSCODE_STALE_MS: "10" }, 'TRANSCODE_STALE_MS must be an integer >= 500 and <= 3153600000000 (a century), got "10"'],
    // Past 2^31-1 ms Bun fires a timer after 1 ms: every transcode would time out at once.
    [{ TRANSCODE_TIMEOUT_MS: "3000000000" }, 'TRANSCODE_TIMEOUT_MS must be an integer >= 1000 and <= 2147483647 (about 24.8 days, the longest timer delay), got "3000000000"'],
    [{ TRANSCODE_POLL_MS: "2147483648" }, 'TRANSCODE_POLL_MS must be an integer >= 50 and <= 2147483647 (about 24.8 days, the longest timer delay), got "2147483648"'],
    // A heartbeat no sooner than the staleness would let another worker take over a live job.
    [{ TRANSCODE_HEARTBEAT_MS: "5000", TRANSCODE_STALE_MS: "5000" }, "TRANSCODE_STALE_MS (5000) must be greater than TRANSCODE_HEARTBEAT_MS (5000), or other workers take over jobs that are still running"],
    [{ TRANSCODE_HEARTBEAT_MS: "60000" }, "TRANSCODE_STALE_MS (30000) must be greater than TRANSCODE_HEARTBEAT_MS (60000)"],
    // Any other scheme used to become a relative SQLite path (./mysql:/u:p@h/db); the password is not echoed.
    [{ DATABASE_URL: "mysql://u:p@h/db" }, 'DATABASE_URL must be `postgres://user:pass@host:5432/db` (PostgreSQL), or a `file:` URL or path (SQLite), got "mysql://u:***@h/db"'],
    [{ DATABASE_URL: "sqlite://spool.db" }, 'DATABASE_URL must be `postgres://user:pass@host:5432/db` (PostgreSQL), or a `file:` URL or path (SQLite), got "sqlite://spool.db"'],
    [{ DATABASE_URL: "postgres://" }, 'DATABASE_URL must name the PostgreSQL server\'s host (`postgres://user:pass@host:5432/db`), got "postgres://"'],
    [{ DATABASE_URL: "postgresql:///spool" }, 'DATABASE_URL must name the PostgreSQL server\'s host (`postgres://user:pass@host:5432/db`), got "postgresql:///spool"'],
    // In memory, or no file at all: every process (WORKERS, the worker, an ingest) had its own empty library.
    [{ DATABASE_URL: ":memory:" }, 'DATABASE_URL must name a SQLite file (`file:/path/spool.db` or a path; unset: `$DATA_DIR/spool.db`), got ":memory:", which is an in-memory database: every process (WORKERS, `bun run worker`, `bun run ingest`) would have its own empty library'],
    [{ DATABASE_URL: "file::memory:" }, 'got "file::memory:", which is an in-memory database'],
    [{ DATABASE_URL: "file::memory:?cache=shared" }, "which is an in-memory database"],
    [{ DATABASE_URL: "file:" }, 'got "file:", which names no file'],
    [{ DATABASE_URL: "file://" }, 'got "file://", which names no file'],
    [{ DATABASE_URL: "FILE:///" }, 'got "FILE:///", which names no file'],
  ];
  test.each(bad)("%p → %s", (env, message) => {
    expect(() => readEnv(env)).toThrow(ConfigError);
    expect(() => readEnv(env)).toThrow(message);
  });

  test("a refused secret is never echoed", () => {
    expect(() => readEnv({ API_KEY: "hunter2" })).not.toThrow(/hunter2/);
    expect(() => readEnv({ DATABASE_URL: "mysql://spool:hunter2@db/spool" })).toThrow(ConfigError);
    expect(() => readEnv({ DATABASE_URL: "mysql://spool:hunter2@db/spool" })).not.toThrow(/hunter2/);
    expect(() => readEnv({ DATABASE_URL: "postgres://spool:hunter2@/spool" })).not.toThrow(/hunter2/);
    // Refused by the schema (surrounding whitespace) rather than by the URL check: still no password.
    expect(() => readEnv({ DATABASE_URL: " postgres://spool:hunter2@db/spool" })).toThrow('DATABASE_URL must not begin or end with whitespace (a space, tab or newline), got " postgres://spool:***@db/spool"');
  });

  test.each(["file:/srv/spool/spool.db", "file:///srv/spool/spool.db", "/srv/spool/spool.db", "data/spool.db", "file:spool.db", ":memory:.db", "postgres://spool:pw@db:5432/spool", "postgresql://db/spool", "POSTGRES://db/spool", "postgres:///spool?host=/run/postgresql"])(
    "DATABASE_URL %p is accepted",
    (url) => expect(readEnv({ DATABASE_URL: url }).DATABASE_URL).toBe(url),
  );
});

describe("byte sizes", () => {
  test("MEMORY_CACHE_BYTES: 1 TiB is accepted (its sketch is 32 MiB), one byte more is refused", () => {
    expect(readEnv({ MEMORY_CACHE_BYTES: String(MAX_MEMORY_CACHE_BYTES) }).MEMORY_CACHE_BYTES).toBe(1024 ** 4);
    expect(() => readEnv({ MEMORY_CACHE_BYTES: String(MAX_MEMORY_CACHE_BYTES + 1) })).toThrow(ConfigError);
  });

  // They allocate nothing in proportion (a disk bound, a Map's budget, a comparison): any size works.
  test.each(["CACHE_MAX_BYTES", "CLIP_CACHE_BYTES", "CLIP_HEADER_CACHE_BYTES", "MAX_UPLOAD_BYTES"])("%s: 2^53-1 is accepted", (name) => {
    expect(readEnv({ [name]: "9007199254740991" })[name as keyof typeof ENV]).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe("millisecond variables", () => {
  /** The ones that become a setTimeout/setInterval/sleep delay. */
  const TIMERS = [
    "DATABASE_QUERY_TIMEOUT_MS",
    "FFMPEG_TIMEOUT_MS",
    "IMPORT_CONNECT_TIMEOUT_MS",
    "IMPORT_IDLE_TIMEOUT_MS",
    "IMPORT_MAX_DURATION_MS",
    "TRANSCODE_TIMEOUT_MS",
    "TRANSCODE_HEARTBEAT_MS",
    "TRANSCODE_POLL_MS",
  ];
  /**
   * The others: compared with clocks (Date.now() arithmetic, rows' timestamps), or (the shutdown
   * grace) waited with Bun.sleep, which honours any delay. A longer value means what it says.
   */
  /** Those added to or taken from the clock: at most a century (a Date holds ±8.64e15 ms). */
  const CLOCK_SPANS = ["CACHE_TTL_MS", "UPLOAD_EXPIRY_MS", "FAILED_RETENTION_MS", "TRANSCODE_RETRY_BASE_MS", "TRANSCODE_RETRY_MAX_MS", "TRANSCODE_STALE_MS"];
  const NOT_TIMERS = ["SHUTDOWN_GRACE_MS", ...CLOCK_SPANS];

  test.each(CLOCK_SPANS)("%s: a century is accepted, one more millisecond (or 2^53) is refused", (name) => {
    expect(readEnv({ [name]: String(MAX_CLOCK_SPAN_MS) })[name as keyof typeof ENV]).toBe(MAX_CLOCK_SPAN_MS);
    // Before, `now - FAILED_RETENTION_MS` was an invalid Date and the retention sweep threw.
    expect(() => readEnv({ [name]: String(MAX_CLOCK_SPAN_MS + 1) })).toThrow(`${name} must be an integer >= `);
    expect(() => readEnv({ [name]: "9007199254740991" })).toThrow("(a century)");
  });

  test("each is a timer's delay or not (a new one must be placed in one list)", () => {
    expect(Object.keys(ENV).filter((name) => name.endsWith("_MS")).sort()).toEqual([...TIMERS, ...NOT_TIMERS].sort());
  });

  test.each(TIMERS)("%s: 2147483647 (the longest timer delay) is accepted, one more is refused", (name) => {
    // The staleness must stay above the heartbeat, whatever the heartbeat is.
    const stale = { TRANSCODE_STALE_MS: String(MAX_TIMER_MS + 1) };
    expect(readEnv({ ...stale, [name]: String(MAX_TIMER_MS) })[name as keyof typeof ENV]).toBe(MAX_TIMER_MS);
    expect(() => readEnv({ ...stale, [name]: String(MAX_TIMER_MS + 1) })).toThrow(`${name} must be an integer >= `);
  });
});

describe("loadConfig", () => {
  test("PORT=0 means one process; paths are absolute; the database defaults to DATA_DIR/spool.db", () => {
    const config = loadConfig({ PORT: "0", WORKERS: "8", DATA_DIR: "/srv/spool" });
    expect(config).toMatchObject({ port: 0, workers: 1, dataDir: "/srv/spool", databaseUrl: "file:/srv/spool/spool.db" });
    expect(config.transcode).toMatchObject({ heartbeatMs: 2000, staleMs: 30_000, pollMs: 1000, preset: "veryfast" });
  });

  // /static/ must never serve the API key, the signing secret, the database or signed videos.
  const S3 = { STORAGE: "s3", S3_BUCKET: "spool" };
  test.each([
    ["STATIC_DIR is DATA_DIR", { STATIC_DIR: "/srv/spool", DATA_DIR: "/srv/spool" }, "DATA_DIR"],
    ["STATIC_DIR holds DATA_DIR (STATIC_DIR=. beside ./data)", { STATIC_DIR: "/srv", DATA_DIR: "/srv/data" }, "DATA_DIR"],
    ["STATIC_DIR is the root", { STATIC_DIR: "/", DATA_DIR: "/srv/data" }, "DATA_DIR"],
    ["DATA_DIR's name starts with two dots (still inside)", { STATIC_DIR: "/srv", DATA_DIR: "/srv/..data" }, "DATA_DIR"],
    ["STATIC_DIR inside DATA_DIR (its videos)", { STATIC_DIR: "/srv/data/videos", DATA_DIR: "/srv/data" }, "DATA_DIR"],
    ["the SQLite file inside STATIC_DIR", { STATIC_DIR: "/srv/www", DATA_DIR: "/srv/data", DATABASE_URL: "file:/srv/www/db/spool.db" }, "DATABASE_URL"],
    ["the bucket's block cache inside STATIC_DIR", { STATIC_DIR: "/srv/www", DATA_DIR: "/srv/data", CACHE_DIR: "/srv/www/cache", ...S3 }, "CACHE_DIR"],
  ])("refused: %s", (_, env, variable) => {
    expect(() => loadConfig(env)).toThrow(new RegExp(`^STATIC_DIR \\(.*\\) and ${variable} \\(.*\\) overlap`));
  });

  test.each([
    ["side by side", { STATIC_DIR: "/srv/static", DATA_DIR: "/srv/data" }],
    ["a name that only starts like DATA_DIR", { STATIC_DIR: "/srv/data-public", DATA_DIR: "/srv/data" }],
    ["PostgreSQL: no SQLite file", { STATIC_DIR: "/srv/www", DATA_DIR: "/srv/data", DATABASE_URL: "postgres://u:p@db/spool" }],
    ["CACHE_DIR is unused with local storage", { STATIC_DIR: "/srv/www", DATA_DIR: "/srv/data", CACHE_DIR: "/srv/www/cache" }],
  ])("accepted: %s", (_, env) => {
    expect(() => loadConfig(env)).not.toThrow();
  });
});
