/**
 * A variable with a value Spool cannot use: the message is one line that names it. Apart from
 * src/env.ts (TypeBox's schemas) so that modules a WORKERS child loads can throw it without
 * loading them (issue 15).
 */
export class ConfigError extends Error {
  override name = "ConfigError";
}
