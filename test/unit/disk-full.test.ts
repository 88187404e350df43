/** Which errors mean "no space left to write": uploads answer 507 for them, jobs wait on them. */
import { expect, test } from "bun:test";
import { DiskFull, isDiskFull } from "../../src/lib/disk-full.ts";

const coded = (code: string) => Object.assign(new Error(code), { code });
const cases: [string, unknown, boolean][] = [
  ["a write on a full file system (ENOSPC)", coded("ENOSPC"), true],
  ["over a quota (EDQUOT)", coded("EDQUOT"), true],
  ["bun:sqlite's SQLITE_FULL", coded("SQLITE_FULL"), true],
  ["wrapped by Drizzle (Failed query: ..., cause)", new Error("Failed query: insert into videos", { cause: coded("SQLITE_FULL") }), true],
  ["ffmpeg's last line (its errors carry no code)", new Error("Error muxing a packet: No space left on device"), true],
  ["another file-system error", coded("EACCES"), false],
  ["the database busy", coded("SQLITE_BUSY"), false],
  ["a string", "ENOSPC", false],
  ["nothing", undefined, false],
];
for (const [name, error, expected] of cases) test(name, () => expect(isDiskFull(error)).toBe(expected));

test("DiskFull is transient (the queue defers it, uncounted) and says what could not be written", () => {
  const error = new DiskFull("to build the HLS ladder", coded("ENOSPC"));
  expect(error.transient).toBe(true);
  expect(error.message).toBe("no space left on the server's disk to build the HLS ladder: ENOSPC");
  expect(isDiskFull(error)).toBe(true);
});
