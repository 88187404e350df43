/**
 * Where Spool's files are: the repository root and what lives under it. Computed from this
 * module's own directory, which is `src/` when run from source and `dist/` when run from the
 * bundle (`bun run build`, scripts/build.ts emits every chunk flat into `dist/`): both are one
 * level below the root, so one `..` serves both. Modules elsewhere must not use their own
 * `import.meta.dir` for files: in the bundle it is `dist/`, not their source directory.
 */
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "..");
export const MIGRATIONS_DIR = join(ROOT, "drizzle");
export const DEMO_FIXTURE = join(ROOT, "fixtures/demo.mp4");
export const PLAYER_ASSETS_DIR = join(ROOT, "src/modules/player/assets");
export const OPENAPI_DIR = join(ROOT, "src/modules/openapi");

/** A package's file (`hls.js/dist/hls.min.js`), resolved from the root's node_modules; null when absent. */
export function packageFile(specifier: string): string | null {
  try {
    return Bun.resolveSync(specifier, ROOT);
  } catch {
    return null;
  }
}
