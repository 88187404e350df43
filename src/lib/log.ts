/**
 * Structured logs (pino): JSON lines for log collectors, or pretty lines on a terminal.
 * LOG_LEVEL and LOG_FORMAT (src/env.ts) configure it; `configureLogging` is called once at
 * start-up (src/index.ts, test/setup.ts). Components take `logger("hls")` at import time, before
 * that call, so what they get resolves the configured logger on every call.
 */
import pino, { type DestinationStream, type LogFn, type Logger } from "pino";
import type { LOG_LEVELS } from "../env.ts";

export type LogFormat = "json" | "pretty";
export type LogLevel = (typeof LOG_LEVELS)[number];

function make(level: LogLevel, format: LogFormat, destination?: DestinationStream, buffer = false, fd: 1 | 2 = 1): Logger {
  flushLogs();
  buffered = undefined;
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (destination) return pino(options, destination);
  if (format === "pretty") {
    // In-process and synchronous: no transport worker thread, and nothing lost on exit. Loaded
    // only here: a JSON-logging server (production) never holds pino-pretty's ~40 modules.
    const pretty = require("pino-pretty") as typeof import("pino-pretty");
    const tty = fd === 1 ? process.stdout.isTTY : process.stderr.isTTY;
    return pino(options, pretty({ sync: true, destination: fd, colorize: !!tty, ignore: "hostname", translateTime: "SYS:HH:MM:ss.l" }));
  }
  if (!buffer) return pino(options, pino.destination({ fd, sync: true }));
  // The server's request lines: a write(2) per 4 KiB of lines, not per request. Flushed every
  // second, and on exit. (Quiet processes, such as the worker CLI, write each line at once.)
  const stream = pino.destination({ fd: 1, sync: false, minLength: 4096 });
  buffered = stream;
  return pino(options, stream);
}

let buffered: { flush(): void; flushSync(): void } | undefined;
setInterval(() => {
  try {
    buffered?.flush();
  } catch {
    // a flush already in flight
  }
}, 1000).unref();
process.on("exit", () => flushLogs());

/** Writes out buffered log lines now (before process.exit; also done on normal exit). */
export function flushLogs(): void {
  try {
    buffered?.flushSync();
  } catch {
    // nothing buffered, or stdout is gone
  }
}

/** The default before configuration: info, pretty on a terminal, else JSON. */
let root: Logger = make("info", process.stdout.isTTY ? "pretty" : "json");
let children = new Map<string, Logger>();

/**
 * `destination`: where lines go instead of stdout (tests that read what was logged). `buffer`:
 * JSON lines are written 4 KiB at a time (the server, which logs every request). `fd`: 2 for a
 * command whose standard output is its result (`bun run ingest` prints the video's JSON).
 */
export function configureLogging(level: LogLevel, format: LogFormat | undefined, destination?: DestinationStream, buffer = false, fd: 1 | 2 = 1): void {
  const tty = fd === 1 ? process.stdout.isTTY : process.stderr.isTTY;
  root = make(level, format ?? (tty ? "pretty" : "json"), destination, buffer, fd);
  children = new Map();
}

function child(component: string): Logger {
  let found = children.get(component);
  if (!found) children.set(component, (found = root.child({ component })));
  return found;
}

export interface Log {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  isLevelEnabled(level: string): boolean;
}

/** A component's logger (its lines carry `component`); follows `configureLogging`. */
export function logger(component: string): Log {
  const at =
    (level: "trace" | "debug" | "info" | "warn" | "error" | "fatal"): LogFn =>
    (...args: Parameters<LogFn>) =>
      (child(component)[level] as (...a: unknown[]) => void)(...args);
  return {
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    fatal: at("fatal"),
    isLevelEnabled: (level) => child(component).isLevelEnabled(level),
  };
}

/** An error as log fields: message and code, the stack only at debug level. */
export function errorFields(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { err: withoutSecrets(String(error)) };
  const stack = root.isLevelEnabled("debug") ? error.stack : undefined;
  return { err: { type: error.name, message: withoutSecrets(error.message), code: (error as NodeJS.ErrnoException).code, stack: stack && withoutSecrets(stack) } };
}

/**
 * An error's text with the secrets of upload URLs out, as request log lines write their paths
 * (src/http/path.ts `loggedPath`): a Request that could not be made, for one, names its URL. A
 * tus upload URL keeps its video id (`/api/uploads/<video id>.<secret>`). A playback token in a
 * query (`?token=`) goes too: no log line writes a query, but an error's text may quote a URL.
 */
const UPLOAD_URL = /(\/api\/uploads\/)(direct\/|[A-Za-z0-9_-]{22}\.)([^\s"'<>)]+)/gi;
const TOKEN_PARAMETER = /([?&]token=)[^&#\s"'<>)]+/gi;

export function withoutSecrets(text: string): string {
  return text.replace(UPLOAD_URL, "$1$2<secret>").replace(TOKEN_PARAMETER, "$1<token>");
}
