/**
 * `bun run ingest <file> [--title T]`: add a local file to the library through the same
 * pipeline as uploads (probe, faststart, poster) and print its final JSON (after processing).
 */
import { parseArgs } from "node:util";
import { resolve, basename } from "node:path";
import { existsSync } from "node:fs";
import { resolveSecrets } from "../server.ts";
import { loadConfig } from "../config.ts";
import { openDatabase } from "../db/client.ts";
import { createContext } from "../app.ts";
import { toVideoJson } from "../modules/videos/schemas.ts";
import { HttpError } from "../http/errors.ts";

const { values, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  options: { title: { type: "string", short: "t" }, help: { type: "boolean", short: "h" } },
  allowPositionals: true,
});

if (values.help || positionals.length !== 1) {
  console.error("usage: bun run ingest <file> [--title T]");
  process.exit(values.help ? 0 : 2);
}

const source = resolve(positionals[0]!);
if (!existsSync(source)) {
  console.error(`ingest: no such file: ${source}`);
  process.exit(1);
}

const { config } = await resolveSecrets(loadConfig());
const handle = openDatabase(config.databaseUrl);
const ctx = createContext(config, handle.db);
try {
  await ctx.library.storage.init();
  ctx.ingest.requireTools();
  const row = await ctx.library.ingestPath(source, { title: values.title, originalFilename: basename(source) });
  console.log(JSON.stringify(toVideoJson(row), null, 2));
  if (row.status !== "ready") process.exitCode = 1;
} catch (error) {
  console.error(`ingest: ${error instanceof HttpError ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await ctx.library.storage.close();
  handle.close();
}
