/**
 * Work to do once every test file has run (test/setup.ts runs it from a preloaded afterAll):
 * stopping what helpers started for the whole run. Bun 1.4.5's test runner emits no process
 * "exit" or "beforeExit" to handlers a test registers, so those never ran.
 */
const pending: (() => unknown)[] = [];

export function atEnd(work: () => unknown): void {
  pending.push(work);
}

export async function runAtEnd(): Promise<void> {
  for (const work of pending.splice(0).reverse()) await Promise.resolve(work()).catch(() => {});
}
