/**
 * Every environment variable Spool reads, declared once: its type and bounds (a TypeBox
 * schema, which also checks it), its default, and the line the README's configuration table
 * shows for it. `src/config.ts` builds the Config from these; test/unit/env.test.ts keeps the
 * README's table equal to `envTable()`, so the documentation cannot drift from the code.
 */
import { Type, type Static, type TArray, type TBoolean, type TInteger, type TSchema, type TString, type TUnsafe } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { PLAYBACK_POLICIES } from "./db/schema.ts";
import { DEFAULT_BLOCK_SIZE } from "./storage/blocks.ts";
import { DEFAULT_QUERY_TIMEOUT_MS } from "./db/deadline.ts";
import { POSTGRES_URL, redactUrl } from "./db/url.ts";
import { TOKEN68 } from "./access/credentials.ts";
import { MIN_API_KEY_LENGTH, MIN_SIGNING_SECRET_LENGTH } from "./access/secrets.ts";
import { ConfigError } from "./lib/config-error.ts";

export interface EnvVar<S extends TSchema = TSchema> {
  schema: S;
  /** The default as the README shows it (the schema's `default` is what the code uses). */
  shown: string;
  /** What it does, for the README. */
  doc: string;
  /** Turns the raw text into what the schema checks (booleans, lists); default: TypeBox's Convert. */
  convert?: (raw: string) => unknown;
  /** What the schema cannot say: the rest of the error line after the name ("must ..."), or undefined when fine. */
  check?: (value: string) => string | undefined;
}

const code = (value: unknown) => `\`${value}\``;

function int(doc: string, value: number, options: { minimum?: number; maximum?: number; shown?: string } = {}): EnvVar<TInteger> {
  const { shown, ...bounds } = options;
  return {
    schema: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, ...bounds, default: value }),
    shown: shown ?? code(value),
    doc,
    // Digits only: TypeBox's Convert would truncate "1.5" to 1.
    convert: (raw) => (/^-?\d+$/.test(raw) ? Number(raw) : raw),
  };
}

/**
 * The longest delay setTimeout/setInterval honour (2^31-1 ms, about 24.8 days): Bun, like Node,
 * runs a longer one after 1 ms with a TimeoutOverflowWarning. TRANSCODE_TIMEOUT_MS=3000000000
 * then failed every transcode at once, and TRANSCODE_POLL_MS=3000000000 made an idle worker spin.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A duration in milliseconds that becomes a timer's delay: at most MAX_TIMER_MS. */
function delay(doc: string, value: number, options: { minimum?: number; shown?: string } = {}): EnvVar<TInteger> {
  return int(doc, value, { ...options, maximum: MAX_TIMER_MS });
}

/**
 * The longest duration that is added to or taken from the clock (retention, expiry, TTLs,
 * backoff): a century. A Date holds ±8.64e15 ms around 1970, so FAILED_RETENTION_MS near 2^53
 * made `now - it` an invalid Date and the retention sweep throw.
 */
export const MAX_CLOCK_SPAN_MS = 100 * 365 * 24 * 60 * 60 * 1000;

/** A duration in milliseconds measured against the clock, never a timer: at most MAX_CLOCK_SPAN_MS. */
function span(doc: string, value: number, options: { minimum?: number; shown?: string } = {}): EnvVar<TInteger> {
  return int(doc, value, { ...options, maximum: MAX_CLOCK_SPAN_MS });
}

const FALSE = ["0", "false", "no", "off"];
const TRUE = ["1", "true", "yes", "on"];
function flag(doc: string, value: boolean): EnvVar<TBoolean> {
  return {
    schema: Type.Boolean({ default: value }),
    shown: code(value ? 1 : 0),
    doc,
    convert: (raw) => (TRUE.includes(raw.toLowerCase()) ? true : FALSE.includes(raw.toLowerCase()) ? false : raw),
  };
}

function text(doc: string, value: string | undefined, shown = value === undefined ? "" : code(value), minLength = 1): EnvVar<TString> {
  return { schema: Type.String({ minLength, ...(value === undefined ? {} : { default: value }) }), shown, doc };
}

function oneOf<const T extends readonly string[]>(doc: string, values: T, value: T[number]): EnvVar<TUnsafe<T[number]>> {
  const schema = Type.Union(values.map((v) => Type.Literal(v)), { default: value });
  return { schema: schema as unknown as TUnsafe<T[number]>, shown: code(value), doc };
}

/** A comma-separated list, each item checked by `item` (empty: none). */
function list(doc: string, expected: string, item: { pattern: string }, normalize: (s: string) => string = (s) => s): EnvVar<TArray<TString>> {
  return {
    schema: Type.Array(Type.String(item), { default: [], description: expected }) as TArray<TString>,
    shown: "",
    doc,
    convert: (raw) =>
      raw
        .split(",")
        .map((s) => normalize(s.trim()))
        .filter(Boolean),
  };
}

export const X264_PRESETS = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"] as const;
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/**
 * DATABASE_URL's forms (see src/db/client.ts): PostgreSQL with a host, else SQLite at a `file:`
 * URL or a path. Any other `scheme://` value (mysql://, sqlite://, a typo) used to be taken as a
 * relative SQLite path: Spool started on an empty database at `./mysql:/...`. A PostgreSQL URL
 * without a host made Bun.SQL try localhost and fail with a bare "Failed to connect".
 */
function databaseUrlProblem(url: string): string | undefined {
  const expected = "`postgres://user:pass@host:5432/db` (PostgreSQL), or a `file:` URL or path (SQLite)";
  if (POSTGRES_URL.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return `must be ${expected}, got ${JSON.stringify(redactUrl(url))} (not a valid URL)`;
    }
    // `?host=/run/postgresql` names a Unix socket directory instead, as libpq allows.
    if (!parsed.hostname && !parsed.searchParams.get("host")) return `must name the PostgreSQL server's host (\`postgres://user:pass@host:5432/db\`), got ${JSON.stringify(redactUrl(url))}`;
    return undefined;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^file:/i.test(url)) return `must be ${expected}, got ${JSON.stringify(redactUrl(url))}`;
  // SQLite in memory (`:memory:`, `file::memory:`) or with no file (`file:`, `file://`: SQLite
  // makes a private temporary one) is a different empty database in every process that opens
  // it: with WORKERS > 1 a video was 200 or 404 by connection, and `bun run worker` and
  // `bun run ingest` never saw the server's library. Lost on exit too.
  const path = url.replace(/^file:/i, "");
  if (path === ":memory:" || path.startsWith(":memory:?") || /^\/*$/.test(path)) {
    const why = /^\/*$/.test(path) ? "names no file" : "is an in-memory database";
    return `must name a SQLite file (\`file:/path/spool.db\` or a path; unset: \`$DATA_DIR/spool.db\`), got ${JSON.stringify(url)}, which ${why}: every process (WORKERS, \`bun run worker\`, \`bun run ingest\`) would have its own empty library`;
  }
  return undefined;
}

/**
 * The largest MEMORY_CACHE_BYTES: 1 TiB. The RAM tier sizes its admission sketch from it
 * (src/files/memory-tier.ts: about 8 one-byte counters per 320 KiB block, rounded up to a power
 * of two), allocated at start: 32 MiB at 1 TiB, but 32 GiB at 2^50, where start-up died with
 * "RangeError: Out of memory", and past 2^52 the sketch's 32-bit index no longer reaches it. A
 * fixed bound rather than the machine's memory (os.totalmem()): the same setting is accepted on
 * every machine, and a container's memory limit is not what os.totalmem() reports anyway. The
 * other byte sizes allocate nothing in proportion (disk bounds, a Map's budget, a comparison),
 * and work up to 2^53-1.
 */
export const MAX_MEMORY_CACHE_BYTES = 1024 ** 4;


/** In README order. */
export const ENV = {
  PORT: int("Port to listen on (`0`: any free port)", 3000, { maximum: 65535 }),
  HOST: text("Address to bind", "0.0.0.0"),
  DATA_DIR: text("Library files and the SQLite database", "./data"),
  STATIC_DIR: text("Served at `/static/...`; must not overlap `DATA_DIR`, the SQLite file or `CACHE_DIR` (start-up refuses it: they hold the API key, the signing secret, the database and the videos)", "./static"),
  STATIC_SANDBOX: flag("HTML, SVG and XML files under `/static/` are sent with `Content-Security-Policy: sandbox …`: their scripts run in an opaque origin, never with a signed-in owner's session; `0` serves them as pages of Spool's own origin (only for files you trust as much as Spool)", true),
  DATABASE_URL: {
    ...text("`postgres://user:pass@host:5432/db` (or `postgresql://`; the host is required) for PostgreSQL (several servers and workers); otherwise an embedded SQLite file, as `file:/path/x.db` or a path; any other `scheme://` is refused", undefined, "`file:$DATA_DIR/spool.db`"),
    check: databaseUrlProblem,
  },
  DATABASE_QUERY_TIMEOUT_MS: delay("PostgreSQL: the longest one query may take; past it the request gets 503 `database_unavailable` instead of waiting on a stalled server", DEFAULT_QUERY_TIMEOUT_MS, { minimum: 100 }),
  DATABASE_POOL_SIZE: int("PostgreSQL: connections each process keeps (one more listens for changes); all processes together (servers × `WORKERS`, plus workers and CLI runs) must stay under the server's `max_connections` (100 by default)", 10, { minimum: 1, maximum: 1000 }),
  STORAGE: oneOf("Where videos, posters and HLS files live: `local` (under `DATA_DIR`) or `s3` (an S3-compatible bucket, see Object storage)", ["local", "s3"] as const, "local"),
  S3_ENDPOINT: text("S3 API endpoint (`https://<account>.r2.cloudflarestorage.com`, `http://minio:9000`); unset: AWS S3 in `S3_REGION`", undefined),
  S3_BUCKET: text("The bucket (required with `STORAGE=s3`)", undefined),
  S3_REGION: text("The bucket's region (`auto` for R2); unset: Bun's default (`auto` with an endpoint)", undefined),
  S3_ACCESS_KEY_ID: text("Access key of the bucket", undefined),
  S3_SECRET_ACCESS_KEY: text("Secret of that key", undefined),
  S3_SESSION_TOKEN: text("Session token, with temporary credentials", undefined),
  S3_DELIVERY: oneOf("With `STORAGE=s3`, how video bytes reach clients: `proxy` (Spool reads them from the bucket, through the cache) or `redirect` (a 302 to a presigned bucket URL valid 5 minutes)", ["proxy", "redirect"] as const, "proxy"),
  CACHE_DIR: text("With `STORAGE=s3`: the local read-through cache of video bytes (may be shared by the processes of one machine)", undefined, "`$DATA_DIR/cache`"),
  CACHE_MAX_BYTES: int("Largest total size of the files in `CACHE_DIR`, blocks being fetched included (one process never passes it; processes sharing the directory can by what the others filled since their last scan); least recently used blocks are evicted, never one used in the last 6 s: then a block is served from memory and not kept", 10 * 1024 ** 3, { minimum: 4 * DEFAULT_BLOCK_SIZE, shown: "`10737418240` (10 GiB)" }),
  API_KEY: {
    ...text(
      "The management key (at least 16 characters of `A-Z a-z 0-9 - . _ ~ + /`, as a Bearer token may hold); unset, one is generated on first start (256 random bits, mode 0600) and the log says where",
      undefined,
      "generated into `DATA_DIR/api-key`",
      MIN_API_KEY_LENGTH,
    ),
    check: (key) => (TOKEN68.test(key) ? undefined : "must use only the characters a Bearer token may hold (A-Z a-z 0-9 - . _ ~ + /, and = at the end): no spaces or other punctuation, or no client could send it"),
  },
  SIGNING_SECRET: text("HS256 secret of playback tokens (at least 32 characters); changing it revokes every token (unless the old one stays as `SIGNING_SECRET_PREVIOUS`)", undefined, "generated into `DATA_DIR/signing-secret`", MIN_SIGNING_SECRET_LENGTH),
  SIGNING_SECRET_PREVIOUS: text("A former `SIGNING_SECRET` whose tokens are still accepted until they expire (it signs nothing): for rotating the secret without breaking playback; remove it once the last token signed with it has expired (7 days at most for tokens Spool mints)", undefined, "", MIN_SIGNING_SECRET_LENGTH),
  DEFAULT_PLAYBACK: oneOf("Playback policy of new videos whose upload names none: `public` or `signed` (the demo is always public)", PLAYBACK_POLICIES, "public"),
  TRUST_PROXY: flag("`1` behind a reverse proxy that appends the client to `X-Forwarded-For`: the failure limit then counts per client, not per proxy, and a signed-in page's changes are checked against the host the proxy names in `X-Forwarded-Host` (which it must set, not pass on from the client) instead of `Host`", false),
  LOG_LEVEL: oneOf("Least severe log lines written: `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `silent`", LOG_LEVELS, "info"),
  LOG_FORMAT: {
    schema: Type.Union([Type.Literal("json"), Type.Literal("pretty")]) as unknown as TUnsafe<"json" | "pretty">,
    shown: "`pretty` on a terminal, else `json`",
    doc: "`json`: one JSON object per line (for log collectors); `pretty`: readable lines",
  },
  MUTATION_RATE_LIMIT: int("Requests that change something (uploads, edits, deletes, tokens, sign-ins; not reads, not tus appends) per client per minute, counted by each serving process; beyond: 429 with `Retry-After` (`0`: no limit)", 120),
  METRICS: flag("`0` turns metrics off: no `/metrics`, and the stream route counts nothing (the benchmark measures the difference)", true),
  // Waited with Bun.sleep, which (unlike setTimeout) honours any delay: no timer bound.
  SHUTDOWN_GRACE_MS: int("On SIGTERM/SIGINT: how long responses in flight (a long download too) may take to finish before the connections are closed", 30_000),
  MAX_UPLOAD_BYTES: int("Largest accepted upload", 8 * 1024 ** 3, { minimum: 1, shown: "`8589934592` (8 GiB)" }),
  CACHE_TTL_MS: span(
    "How long a file's stat and a video's row are trusted on the hot path (changes made by this server's own processes are seen at once; by others, such as a CLI ingest, within this time)",
    1000,
  ),
  MEMORY_CACHE_BYTES: int("RAM tier per serving process: hot blocks of videos (under `DATA_DIR`, or in the bucket, in front of `CACHE_DIR`) and `/static` files (every video's first 320 KiB, then blocks asked for repeatedly) answered from memory when an answer is at most 256 KiB (`0`: off, every answer by sendfile)", 32 * 1024 ** 2, { maximum: MAX_MEMORY_CACHE_BYTES, shown: "`33554432` (32 MiB)" }),
  CLIP_CACHE_BYTES: int(
    "Disk space under `DATA_DIR/cache/clips` for MP4 clips (`?start=&end=`) kept as files of their own, shared by the processes of a machine, least recently used out first; a kept clip goes out by sendfile with a Content-Length; clips over 1/8 of this are always streamed (`0`: off, every clip streamed)",
    1024 ** 3,
    { shown: "`1073741824` (1 GiB)" },
  ),
  CLIP_HEADER_CACHE_BYTES: int(
    "Memory per serving process for what clips are cut from: each video's parsed `moov` (a two-hour film's is about 12 MiB) and each clip's header, least recently used out first; a `moov` larger than this is read and parsed for every new interval (`0`: nothing kept)",
    64 * 1024 ** 2,
    { shown: "`67108864` (64 MiB)" },
  ),
  SEED_DEMO: flag("Put the demo clip (id `demo`) in an empty library", true),
  WORKERS: { ...int("", 1, { minimum: 1 }), schema: Type.Integer({ minimum: 1, maximum: 256 }) as TInteger, shown: "number of cores", doc: "Serving processes sharing the port (SO_REUSEPORT); they relay their changes to each other over IPC (`PORT=0` means one)" },
  CORS_ORIGINS: {
    schema: Type.Array(Type.String({ pattern: "^(\\*|[a-z][a-z0-9+.-]*://[^/\\s,]+)$" }), { default: ["*"] }) as TArray<TString>,
    shown: "`*`",
    doc: "CORS for `/api/stream`, `/api/hls` and tus `/api/uploads`: `*`, a comma-separated list of origins, or `none`",
    convert: (raw) => {
      if (raw.trim().toLowerCase() === "none") return [];
      // Browsers send Origin with a lower-case scheme and host and without the scheme's default
      // port (RFC 6454 §6.2), so a list is compared that way.
      const origins = raw
        .split(",")
        .map((o) => o.trim().replace(/\/+$/, "").toLowerCase().replace(/^(https:\/\/[^/]+):443$|^(http:\/\/[^/]+):80$/, "$1$2"))
        .filter(Boolean);
      // Commas alone are not `none`, and `*` among origins means neither: refused as written.
      if (origins.length === 0 || (origins.length > 1 && origins.includes("*"))) return [raw];
      return origins;
    },
  },
  FFMPEG_PATH: text("The ffmpeg that ingest and transcoding use", "ffmpeg"),
  FFPROBE_PATH: text("The ffprobe that ingest uses", "ffprobe"),
  FFMPEG_TIMEOUT_MS: delay("Longest a single ingest ffmpeg run may take", 30 * 60 * 1000, { minimum: 1000 }),
  UPLOAD_EXPIRY_MS: span("When an unfinished resumable upload is deleted", 24 * 60 * 60 * 1000, { minimum: 1000 }),
  IMPORT_ALLOW_PRIVATE: flag("`1` lets URL imports reach loopback, private, link-local and other non-public addresses (trusted networks, tests); by default only public addresses", false),
  IMPORT_ALLOWED_NETWORKS: list("Non-public networks URL imports may reach anyway, as comma-separated CIDRs (`192.168.1.0/24,fd00::/8`), without opening all of them", "a comma-separated list of CIDR networks like 192.168.1.0/24", { pattern: "^[0-9a-fA-F.:]+(/\\d{1,3})?$" }),
  IMPORT_ALLOWED_HOSTS: list("When set, URL imports only from these host names (comma-separated, exact match; redirects too)", "a comma-separated list of host names like cdn.example.com", { pattern: "^[A-Za-z0-9.-]+$|^\\[[0-9a-fA-F:.]+\\]$" }, (h) => h.toLowerCase()),
  IMPORT_CONNECT_TIMEOUT_MS: delay("URL imports: longest wait for a source's answer (DNS, connection, TLS, response headers), each request", 30_000, { minimum: 100 }),
  IMPORT_IDLE_TIMEOUT_MS: delay("URL imports: longest a download may go without receiving data", 30_000, { minimum: 100 }),
  IMPORT_MIN_BYTES_PER_SECOND: int("URL imports: slowest average accepted over each `IMPORT_IDLE_TIMEOUT_MS` window; a source that trickles slower is dropped (`0`: no minimum)", 1024),
  IMPORT_MAX_DURATION_MS: delay("URL imports: longest a whole download may take, redirects and resumptions included (`0`: no limit)", 6 * 60 * 60 * 1000, { shown: "`21600000` (6 h)" }),
  IMPORT_MAX_REDIRECTS: int("URL imports: redirects followed", 5, { maximum: 20 }),
  MAX_DURATION_S: int("Longest accepted video or audio, in seconds; longer uploads are refused with 422 (`0`: no limit)", 6 * 60 * 60, { shown: "`21600` (6 h)" }),
  MAX_PIXELS: int("Largest accepted frame, width x height; larger videos are refused with 422 (`0`: no limit)", 8192 * 4320, { shown: "`35389440` (8192x4320)" }),
  MAX_FPS: int("Highest accepted frame rate; faster videos are refused with 422 (`0`: no limit)", 240),
  FAILED_RETENTION_MS: span(
    "How long a `failed` video (and an upload row left `uploading` with nothing behind it) stays listed before it is deleted with its files (`0`: kept forever)",
    7 * 24 * 60 * 60 * 1000,
    { shown: "`604800000` (7 days)" },
  ),
  TRANSCODE_IN_SERVER: flag("Run a worker inside the server for every kind of background job: processing of uploads, HLS builds, URL imports (`0`: none; run `npm run worker` elsewhere)", true),
  TRANSCODE_CONCURRENCY: int("ffmpeg transcodes at once, per worker process", 1, { minimum: 1 }),
  TRANSCODE_MAX_ATTEMPTS: int("Tries of a job whose worker died or (HLS builds) that failed, before it is `failed` (an HLS build then starts over with `POST /api/videos/:id/hls/retry`)", 3, { minimum: 1 }),
  TRANSCODE_RETRY_BASE_MS: span("Backoff before the first retry; doubles with each failure", 30_000),
  TRANSCODE_RETRY_MAX_MS: span("Longest backoff between tries", 30 * 60_000),
  TRANSCODE_TIMEOUT_MS: delay("Longest one transcode may run", 6 * 60 * 60_000, { minimum: 1000, shown: "`21600000` (6 h)" }),
  TRANSCODE_HEARTBEAT_MS: delay("How often a worker proves it still runs its job (any kind)", 2000, { minimum: 100 }),
  TRANSCODE_STALE_MS: span("How old a job's heartbeat may get before another worker takes the job over; must be greater than `TRANSCODE_HEARTBEAT_MS`", 30_000, { minimum: 500 }),
  TRANSCODE_POLL_MS: delay("How often an idle worker looks for work", 1000, { minimum: 50 }),
  TRANSCODE_PRESET: oneOf("x264 preset for the ladder", X264_PRESETS, "veryfast"),
  HLS_SEGMENT_SECONDS: int("Target segment (and keyframe) interval", 4, { minimum: 1 }),
  HLS_MAX_HEIGHT: int("Largest rendition, by its short side (the height of landscape video, the width of portrait)", 1080, { minimum: 144 }),
  THUMBNAIL_CONCURRENCY: int("ffmpeg runs making thumbnails (frames asked with `t`/`width`) at once, per serving process", 2, { minimum: 1 }),
  THUMBNAIL_QUEUE: int("Thumbnails that may wait for a run; a new frame beyond that is refused with 503 `thumbnails_busy` and `Retry-After`", 16),
  NODE_ENV: text("`production` in the Docker image", undefined, "", 0),
} satisfies Record<string, EnvVar<TSchema>>;

export type EnvName = keyof typeof ENV;
export type EnvValues = { [K in EnvName]: Static<(typeof ENV)[K]["schema"]> | undefined };

export { ConfigError };

/** What a schema accepts, in words, for the error message. */
function expectation(schema: TSchema): string {
  if (schema.type === "integer") {
    const max =
      schema.maximum === undefined || schema.maximum >= Number.MAX_SAFE_INTEGER
        ? ""
        : ` and <= ${schema.maximum}${schema.maximum === MAX_TIMER_MS ? " (about 24.8 days, the longest timer delay)" : schema.maximum === MAX_CLOCK_SPAN_MS ? " (a century)" : schema.maximum === MAX_MEMORY_CACHE_BYTES ? " (1 TiB)" : ""}`;
    return `an integer >= ${schema.minimum ?? 0}${max}`;
  }
  if (schema.type === "boolean") return `one of ${[...TRUE, ...FALSE].join(", ")}`;
  if (schema.type === "array") return schema.description ?? "`*`, `none`, or a comma-separated list of origins like https://example.com";
  if (schema.anyOf) return `one of ${(schema.anyOf as { const: string }[]).map((s) => s.const).join(", ")}`;
  if (schema.minLength > 1) return `at least ${schema.minLength} characters with no surrounding whitespace`;
  return "a non-empty string";
}

const REFUSED = Symbol("refused");

/** The raw text as the variable's value, or REFUSED when the schema does not take it (surrounding whitespace included). */
function accepted(variable: EnvVar, raw: string): unknown {
  const converted = variable.convert ? variable.convert(raw) : Value.Convert(variable.schema, raw);
  if (!Value.Check(variable.schema, converted) || (typeof converted === "string" && converted.trim() !== converted)) return REFUSED;
  return converted;
}

/** Reads and checks every declared variable; unset (or empty) ones take their default. */
export function readEnv(env: Record<string, string | undefined> = process.env): EnvValues {
  const values: Record<string, unknown> = {};
  for (const [name, variable] of Object.entries(ENV) as [EnvName, EnvVar][]) {
    const raw = env[name];
    if (raw === undefined || raw === "") {
      values[name] = variable.schema.default;
      continue;
    }
    const converted = accepted(variable, raw);
    if (converted === REFUSED) {
      const secret = ["API_KEY", "SIGNING_SECRET", "SIGNING_SECRET_PREVIOUS", "S3_SECRET_ACCESS_KEY", "S3_SESSION_TOKEN"].includes(name);
      const got = secret ? `${raw.length} characters` : JSON.stringify(redactUrl(raw));
      const trimmed = raw.trim();
      // `HOST=" 127.0.0.1"` was told it "must be a non-empty string": say what is wrong.
      if (trimmed === "") throw new ConfigError(`${name} is only whitespace, got ${got}: leave it empty or unset for the default`);
      if (trimmed !== raw && accepted(variable, trimmed) !== REFUSED) throw new ConfigError(`${name} must not begin or end with whitespace (a space, tab or newline), got ${got}`);
      throw new ConfigError(`${name} must be ${expectation(variable.schema)}, got ${got}`);
    }
    const problem = variable.check?.(converted as string);
    if (problem) throw new ConfigError(`${name} ${problem}`);
    values[name] = converted;
  }
  // A running job heartbeats every TRANSCODE_HEARTBEAT_MS; were that not sooner than
  // TRANSCODE_STALE_MS, its heartbeat would look stale between two beats and another worker
  // would take over (and run a second time) a job whose worker is alive.
  const { TRANSCODE_HEARTBEAT_MS: heartbeat, TRANSCODE_STALE_MS: stale } = values as { TRANSCODE_HEARTBEAT_MS: number; TRANSCODE_STALE_MS: number };
  if (stale <= heartbeat) {
    throw new ConfigError(`TRANSCODE_STALE_MS (${stale}) must be greater than TRANSCODE_HEARTBEAT_MS (${heartbeat}), or other workers take over jobs that are still running`);
  }
  return values as EnvValues;
}

/** The README's configuration table, from the declarations. */
export function envTable(): string {
  const rows = (Object.entries(ENV) as [EnvName, EnvVar][]).map(([name, v]) => `| \`${name}\` | ${v.shown} | ${v.doc} |`);
  return ["| Variable | Default | Meaning |", "| --- | --- | --- |", ...rows].join("\n");
}
