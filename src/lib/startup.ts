/** Failures only found when Spool tries to start, and how the commands report them. */

/**
 * Spool cannot start as configured, for a reason found only when it tries: HOST cannot be
 * listened on, the port is already served, PostgreSQL cannot be reached. The message is one line
 * (never a password) that the commands print as `spool: <message>`, without a stack, exiting
 * with `exitCode`: 2 when a setting is wrong, as for a ConfigError; 1 when something outside is.
 */
export class StartupError extends Error {
  override name = "StartupError";
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/** Awaits a start-up step: a StartupError is one line on stderr and the process's exit code, no stack. */
export async function orExit<T>(step: Promise<T>): Promise<T> {
  try {
    return await step;
  } catch (error) {
    if (!(error instanceof StartupError)) throw error;
    console.error(`spool: ${error.message}`);
    process.exit(error.exitCode);
  }
}

/**
 * A command's arguments read with `parse` (node:util's parseArgs): one it does not know (or an
 * option without its value) is one line naming it, then the usage, and exit code 2, as for a bad
 * setting, instead of parseArgs' ERR_PARSE_ARGS_* stack and exit code 1.
 */
export function argsOrExit<T>(parse: () => T, usage: string): T {
  try {
    return parse();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS_")) throw error;
    const option = /'(-[^']*)'/.exec((error as Error).message)?.[1];
    // "Option '-t, --title <value>' argument missing", "Unexpected argument 'x'. ...": as they are.
    const what = code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option ? `unknown option ${option}` : (error as Error).message.split("\n")[0];
    console.error(`spool: ${what}\n${usage}`);
    process.exit(2);
  }
}
