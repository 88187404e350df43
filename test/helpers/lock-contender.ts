/** Child process for the upload-lock test: takes the same upload lock N times, logging each hold. */
import { appendFileSync } from "node:fs";
import { FileLocker } from "../../src/modules/uploads/file-locker.ts";

const [dir, log, name, rounds] = Bun.argv.slice(2) as [string, string, string, string];
const locker = new FileLocker(dir);
for (let i = 0; i < Number(rounds); i++) {
  const lock = locker.newLock("same-upload");
  await lock.lock(new AbortController().signal, () => {});
  appendFileSync(log, `start ${name}\n`);
  await Bun.sleep(60);
  appendFileSync(log, `end ${name}\n`);
  await lock.unlock();
  await Bun.sleep(5);
}
