/** src/lib/bounded-work.ts: the places, the per-client share, the refusals, and the turns. */
import { expect, test } from "bun:test";
import { BoundedWork } from "../../src/lib/bounded-work.ts";
import { HttpError } from "../../src/http/errors.ts";

function refusal(run: () => unknown): { status: number; code: string; retryAfter: string | undefined } | null {
  try {
    run();
    return null;
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return { status: error.status, code: error.code, retryAfter: error.headers?.["retry-after"] };
  }
}

test("admits concurrency + queue tasks, then refuses with 503 <code>_busy; one client gets its share, then 429 <code>_rate_limited; places come back as tasks end", async () => {
  const work = new BoundedWork("things", "things", { concurrency: 1, queue: 3 });
  expect(work.perClient).toBe(2);
  const gates: (() => void)[] = [];
  const task = () => new Promise<string>((resolve) => gates.push(() => resolve("done")));
  const a1 = work.run("a", task);
  const a2 = work.run("a", task);
  expect(refusal(() => work.run("a", task))).toEqual({ status: 429, code: "things_rate_limited", retryAfter: "1" });
  const b1 = work.run("b", task);
  const anonymous = work.run(undefined, task);
  expect(work.pending).toBe(4);
  expect(refusal(() => work.run("c", task))).toEqual({ status: 503, code: "things_busy", retryAfter: "1" });
  // One at a time, each on a later turn of the event loop.
  await new Promise((resolve) => setImmediate(resolve));
  await Bun.sleep(1);
  expect(gates).toHaveLength(1);
  gates.shift()!();
  expect(await a1).toBe("done");
  // a's place is free again.
  const a3 = work.run("a", task);
  for (const p of [a2, b1, anonymous, a3]) {
    while (gates.length === 0) await Bun.sleep(1);
    gates.shift()!();
    expect(await p).toBe("done");
  }
  expect(work.pending).toBe(0);
});

test("a task that throws frees its place and its client's share", async () => {
  const work = new BoundedWork("things", "things", { concurrency: 1, queue: 0, perClient: 1 });
  await expect(work.run("a", () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
  expect(work.pending).toBe(0);
  expect(await work.run("a", () => 7)).toBe(7);
});

test("requests that arrive while a task runs are answered before the next task starts", async () => {
  const work = new BoundedWork("things", "things", { concurrency: 1, queue: 10 });
  const order: string[] = [];
  const busy = (name: string) => () => {
    order.push(name);
    const until = performance.now() + 5;
    while (performance.now() < until) {}
  };
  const runs = [work.run(undefined, busy("task 1")), work.run(undefined, busy("task 2"))];
  // Work that became due while task 1 ran (as a request arriving then would).
  setTimeout(() => order.push("other work"), 1);
  await Promise.all(runs);
  await new Promise((resolve) => setImmediate(resolve));
  expect(order.indexOf("other work")).toBeGreaterThan(-1);
  expect(order.indexOf("other work")).toBeLessThan(order.indexOf("task 2"));
});

test.each([
  { places: "1 run + 3 waiting", limits: { concurrency: 1, queue: 3 }, perClient: 2 },
  { places: "1 run + 2 waiting", limits: { concurrency: 1, queue: 2 }, perClient: 2 },
  { places: "2 runs + 64 waiting", limits: { concurrency: 2, queue: 64 }, perClient: 33 },
  { places: "1 run + 0 waiting", limits: { concurrency: 1, queue: 0 }, perClient: 1 },
  { places: "1 run + 2 waiting, perClient 1", limits: { concurrency: 1, queue: 2, perClient: 1 }, perClient: 1 },
])("a client's share of $places is $perClient (default: half of all places, rounded up)", ({ limits, perClient }) => {
  expect(new BoundedWork("things", "things", limits).perClient).toBe(perClient);
});
