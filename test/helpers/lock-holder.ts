/**
 * Child process for the upload-lock tests: takes one upload's lock and holds it while writing,
 * like a long PATCH. Prints `held` once it holds the lock and `released` after letting go.
 *
 * Arguments: <lock dir> <upload id> <staleMs> <holdMs, or "forever"> <file to append to>
 */
import { appendFileSync } from "node:fs";
import { FileLocker } from "../../src/modules/uploads/file-locker.ts";

const [dir, id, staleMs, holdMs, data] = Bun.argv.slice(2) as [string, string, string, string, string];
const locker = new FileLocker(dir, { staleMs: Number(staleMs), acquireTimeoutMs: 60_000 });
const lock = locker.newLock(id);
let compromised = false;
await lock.lock(new AbortController().signal, () => {
  compromised = true;
});
console.log("held");
const until = holdMs === "forever" ? Infinity : Date.now() + Number(holdMs);
let chunk = 0;
while (Date.now() < until) {
  appendFileSync(data, `${process.pid} ${chunk++} ${Date.now()}\n`);
  await Bun.sleep(20);
}
await lock.unlock();
console.log(compromised ? "compromised" : "released");
