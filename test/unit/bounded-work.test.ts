/** src/lib/bounded-work.ts: the places, the per-client share, the refusals, and the turns. */
import { expect, test } from "bun:test";
import { BoundedWork, type RetryAfter } from "../../src/lib/bounded-work.ts";
import { ObservedRetryAfter } from "../../src/lib/observed-retry-after.ts";
import { HttpError } from "../../src/http/errors.ts";
import { WaitAborted } from "../../src/lib/limiter.ts";

function refusal(run: () => unknown): { status: number; code: string; retryAfter: string | undefined } | null {
  const error = refusalError(run);
  return error && { status: error.status, code: error.code, retryAfter: error.headers?.["retry-after"] };
}

function refusalError(run: () => unknown): HttpError | null {
  try {
    run();
    return null;
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return error;
  }
}

const until = async (condition: () => boolean) => {
  while (!condition()) await Bun.sleep(1);
};

/** Tasks that run until their gate is opened (concurrency 1: one gate at a time). */
function gated() {
  const gates: (() => void)[] = [];
  const task = () => new Promise<string>((resolve) => gates.push(() => resolve("done")));
  /** Lets `runs` finish in order, each once it has started; what they resolved to. */
  const finish = async (runs: Promise<string>[]) => {
    const results: string[] = [];
    for (const run of runs) {
      await until(() => gates.length === 1);
      gates.shift()!();
      results.push(await run);
    }
    return results;
  };
  return { gates, task, finish };
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

test("a refusal's Retry-After, in its header and its message, is what the estimator says for the tasks waiting then; it hears how long each task that succeeded ran", async () => {
  const asked: { waiting: number; concurrency: number }[] = [];
  const ran: number[] = [];
  const retryAfter: RetryAfter = {
    seconds: (waiting, concurrency) => {
      asked.push({ waiting, concurrency });
      return 7;
    },
    ran: (ms) => ran.push(ms),
  };
  const work = new BoundedWork("things", "things", { concurrency: 1, queue: 2, perClient: 2 }, { retryAfter });
  const { gates, task, finish } = gated();
  const runs = [work.run("a", task), work.run("a", task)];
  await until(() => gates.length === 1);
  const limited = refusalError(() => work.run("a", task))!;
  expect({ status: limited.status, retryAfter: limited.headers?.["retry-after"], message: limited.message }).toEqual({
    status: 429,
    retryAfter: "7",
    message: "This client already has 2 things being made; try again in 7 s",
  });
  runs.push(work.run("b", task));
  const busy = refusalError(() => work.run("c", task))!;
  expect({ status: busy.status, retryAfter: busy.headers?.["retry-after"], message: busy.message }).toEqual({
    status: 503,
    retryAfter: "7",
    message: "Too many things are being made; try again in 7 s",
  });
  expect(asked).toEqual([
    { waiting: 1, concurrency: 1 },
    { waiting: 2, concurrency: 1 },
  ]);

  await Bun.sleep(100);
  gates.shift()!();
  await runs[0];
  expect(ran).toHaveLength(1);
  // Its run: at least the 100 ms it was held.
  expect(ran[0]!).toBeGreaterThanOrEqual(99);
  await finish(runs.slice(1));
  expect(ran).toHaveLength(3);
  // The next one waited those 100 ms, then ran at once: its time in the queue is not its run's.
  expect(ran[1]!).toBeLessThan(90);
  // A task that fails says nothing about how long one takes.
  await expect(work.run(undefined, () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
  expect(ran).toHaveLength(3);
});

test.each([
  { case: "the first guess (500 ms), nothing waiting", runs: [], waiting: 0, concurrency: 1, seconds: 1 },
  { case: "the first guess, 3 waiting for 1 slot", runs: [], waiting: 3, concurrency: 1, seconds: 2 },
  { case: "the first guess, 4 waiting for 2 slots", runs: [], waiting: 4, concurrency: 2, seconds: 2 },
  { case: "one run of 1.5 s moves the average to 700 ms", runs: [1500], waiting: 4, concurrency: 1, seconds: 4 },
  { case: "fast runs: never less than 1 s", runs: [1, 1, 1, 1, 1, 1, 1, 1], waiting: 1, concurrency: 1, seconds: 1 },
  { case: "a first guess of 0 ms: still 1 s", firstGuessMs: 0, runs: [], waiting: 3, concurrency: 1, seconds: 1 },
  { case: "slow runs: never more than 30 s", runs: [60_000], waiting: 16, concurrency: 1, seconds: 30 },
])("ObservedRetryAfter: $case → $seconds s", ({ firstGuessMs, runs, waiting, concurrency, seconds }) => {
  const estimate = new ObservedRetryAfter(firstGuessMs);
  for (const ms of runs) estimate.ran(ms);
  expect(estimate.seconds(waiting, concurrency)).toBe(seconds);
});

test.each([
  { when: "before it is run", abort: "at once" },
  { when: "while it waits behind another task", abort: "queued" },
  { when: "once its slot is free, before its turn of the event loop", abort: "on its turn" },
] as const)("a task cancelled $when never runs, rejects with WaitAborted without waiting for the task ahead, and frees its place and its client's share", async ({ abort }) => {
  // Just the places the test takes, so that a place or share not freed refuses `again` below.
  const queued = abort === "queued";
  const work = new BoundedWork("things", "things", { concurrency: 1, queue: queued ? 1 : 0, perClient: queued ? 2 : 1 });
  const { gates, task, finish } = gated();
  const ahead = queued ? work.run("a", task) : undefined;
  await until(() => gates.length === (ahead ? 1 : 0));
  const controller = new AbortController();
  if (abort === "at once") controller.abort();
  let ran = false;
  const cancelled = work.run("a", () => void (ran = true), { signal: controller.signal });
  expect({ running: work.running, waiting: work.waiting }).toEqual(abort === "on its turn" ? { running: 1, waiting: 0 } : { running: ahead ? 1 : 0, waiting: 1 });
  controller.abort();
  const outcome = await Promise.race([cancelled.then(() => "ran", (error: unknown) => error), Bun.sleep(1000).then(() => "still waiting")]);
  expect(outcome).toBeInstanceOf(WaitAborted);
  expect(ran).toBe(false);
  expect({ pending: work.pending, waiting: work.waiting }).toEqual({ pending: ahead ? 1 : 0, waiting: 0 });
  // Its place and its share are free again.
  const again = work.run("a", task);
  expect(await finish(ahead ? [ahead, again] : [again])).toEqual(ahead ? ["done", "done"] : ["done"]);
  await Bun.sleep(5);
  expect(ran).toBe(false);
});

test("a task already started is not stopped by its signal (the task is given it if it can stop)", async () => {
  const work = new BoundedWork("things", "things", { concurrency: 1, queue: 0 });
  const controller = new AbortController();
  const { gates, task } = gated();
  const run = work.run(undefined, task, { signal: controller.signal });
  await until(() => gates.length === 1);
  controller.abort();
  gates.shift()!();
  expect(await run).toBe("done");
});

test.each([
  { full: "every place is taken", refused: 503 },
  { full: "its client has its share", refused: 429 },
])("an unrefused task is admitted when $full, and takes a place", async ({ full, refused }) => {
  const work = new BoundedWork("things", "things", { concurrency: 1, queue: 1, perClient: 1 });
  const { task, finish } = gated();
  const runs = full === "every place is taken" ? [work.run("a", task), work.run("b", task)] : [work.run("a", task)];
  expect(refusal(() => work.run("a", task))?.status).toBe(refused);
  runs.push(work.run("a", task, { unrefused: true }));
  expect(work.pending).toBe(runs.length);
  // The place it took is not given to another client.
  if (runs.length === 2) expect(refusal(() => work.run("c", task))?.status).toBe(503);
  expect(await finish(runs)).toEqual(runs.map(() => "done"));
  expect(work.pending).toBe(0);
});

test("no slot configured is one slot: tasks still run", async () => {
  const work = new BoundedWork("things", "things", { concurrency: 0, queue: 2 });
  expect(await Promise.all([work.run(undefined, () => 1), work.run(undefined, () => 2)])).toEqual([1, 2]);
});

test.each([
  { case: "by default", options: {}, busy: "Too many things are being made; try again in 1 s", limited: "This client already has 1 things being made; try again in 1 s" },
  { case: "with clientWhat", options: { clientWhat: "new things" }, busy: "Too many things are being made; try again in 1 s", limited: "This client already has 1 new things being made; try again in 1 s" },
])("the refusals' messages $case: the 503 names `what`, the 429 `clientWhat`", async ({ options, busy, limited }) => {
  const work = new BoundedWork("things", "things", { concurrency: 1, queue: 1, perClient: 1 }, options);
  const { task, finish } = gated();
  const runs = [work.run("a", task)];
  const messages = [refusalError(() => work.run("a", task))?.message];
  runs.push(work.run("b", task));
  messages.push(refusalError(() => work.run("c", task))?.message);
  expect(messages).toEqual([limited, busy]);
  await finish(runs);
});
