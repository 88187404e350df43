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
