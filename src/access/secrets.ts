/**
 * The API key and the token-signing secret: from the environment, or generated once and kept
 * in DATA_DIR (mode 0600), so `npm start` is secure with nothing configured and every process
 * sharing DATA_DIR (WORKERS, a restart) uses the same values.
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { logger } from "../lib/log.ts";
import { StartupError } from "../lib/startup.ts";

export const API_KEY_FILE = "api-key";
export const SIGNING_SECRET_FILE = "signing-secret";

/** Shortest API_KEY accepted: anything shorter can be guessed despite the rate limit. */
export const MIN_API_KEY_LENGTH = 16;
/** Shortest SIGNING_SECRET accepted: an HS256 key of fewer than 256 bits weakens every token. */
export const MIN_SIGNING_SECRET_LENGTH = 32;

export interface Secret {
  value: string;
  /** Where it came from: the variable's name, or the file it is kept in. */
  source: { env: string } | { file: string; created: boolean };
}

/** 256 random bits, URL-safe; the prefix makes a leaked key easy to recognise (secret scanners). */
export function generateApiKey(): string {
  return `spool_${randomBytes(32).toString("base64url")}`;
}

export function generateSigningSecret(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * Reads `path`, or creates it with `make()`'s value. Creation is atomic across processes: the
 * value is written to a private temporary file and hard-linked into place, which fails if
 * another process got there first (then its value is read). Nobody ever reads a half-written file.
 */
export async function loadOrCreateSecretFile(path: string, make: () => string, minLength: number): Promise<{ value: string; created: boolean }> {
  await mkdir(dirname(path), { recursive: true });
  const existing = await readSecret(path, minLength);
  if (existing !== undefined) return { value: existing, created: false };
  const temp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(temp, make() + "\n", { mode: 0o600, flag: "wx" });
    try {
      await link(temp, path);
      return { value: (await readSecret(path, minLength))!, created: true };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const raced = await readSecret(path, minLength);
      if (raced === undefined) throw new Error(`${path} appeared but is empty`);
      return { value: raced, created: false };
    }
  } finally {
    await rm(temp, { force: true });
  }
}

async function readSecret(path: string, minLength: number): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const value = text.trim();
  if (value.length < minLength) throw new Error(`${path} must hold at least ${minLength} characters; delete it to have a new one generated`);
  const mode = (await stat(path)).mode & 0o777;
  if (mode & 0o077) logger("access").warn({ path, mode: mode.toString(8) }, `${path} is readable by other users; run: chmod 600 ${path}`);
  return value;
}

export async function resolveSecret(envName: string, fromEnv: string | undefined, dataDir: string, file: string, make: () => string, minLength: number): Promise<Secret> {
  if (fromEnv !== undefined) return { value: fromEnv, source: { env: envName } };
  const path = join(dataDir, file);
  try {
    const { value, created } = await loadOrCreateSecretFile(path, make, minLength);
    return { value, source: { file: path, created } };
  } catch (error) {
    // One line naming the setting (exit 2), not a stack: a file this user may not read or
    // create (DATA_DIR made by another user), or one too short.
    const { code, message } = error as NodeJS.ErrnoException;
    if (code === undefined) throw new StartupError(`${envName}: ${message}`, 2);
    const reason = code === "EACCES" || code === "EPERM" ? `permission denied to uid ${process.getuid?.() ?? "?"}` : code;
    throw new StartupError(`${envName}: cannot read or create ${path} (${reason}): give the user Spool runs as access to it, or set ${envName}`, 2);
  }
}

/** What the server prints about its key: where it is and how to read it, never the key itself. */
export function describeApiKey(secret: Secret): string {
  if ("env" in secret.source) return `API key: from ${secret.source.env}`;
  const verb = secret.source.created ? "generated and kept in" : "kept in";
  return `API key: ${verb} ${secret.source.file} (mode 0600); read it with: cat ${secret.source.file}`;
}
