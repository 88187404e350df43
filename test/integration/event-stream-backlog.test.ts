/**
 * Event streams push every change as it happens, whether or not their client reads. A client that
 * opens streams and stops reading must not make the server keep every later event for each of
 * them (50 stalled streams held 500 MB after 9,000 changes, and kept growing): past
 * EVENT_BACKLOG_BYTES unread, the stream ends (EventSource reconnects) and its backlog is dropped.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { EVENT_BACKLOG_BYTES } from "../../src/http/event-stream.ts";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";

let spool: TestSpool;
beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: true });
});
afterAll(() => spool?.stop());

/** An event stream whose client reads nothing (its socket paused) until `resume`. */
async function stalledStream(path: string): Promise<{ socket: Socket; resume(waitMs: number): Promise<{ ended: boolean; bytes: number }> }> {
  const socket = connect(spool.port, "127.0.0.1");
  await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.pause();
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${AUTH.authorization}\r\nConnection: close\r\n\r\n`);
  return {
    socket,
    resume(waitMs) {
      return new Promise((resolve) => {
        let bytes = 0;
        const timer = setTimeout(() => resolve({ ended: false, bytes }), waitMs);
        socket.on("data", (chunk: Buffer) => (bytes += chunk.byteLength));
        socket.once("close", () => {
          clearTimeout(timer);
          resolve({ ended: true, bytes });
        });
        socket.resume();
      });
    },
  };
}

/**
 * Streams listening to URL imports' download progress in the server (each of these event
 * streams does while it lives, and stops when it ends): how the test sees the server end one
 * whose client, paused, cannot see it yet.
 */
const listening = () => spool.ctx.imports.events.listenerCount("progress");

/** `count` title changes of the demo, each an event of about 2.4 KB on every stream (a reader may be told of several at once). */
async function changeTitles(count: number): Promise<number> {
  let next = 0;
  let eventBytes = 0;
  const worker = async () => {
    while (next < count) {
      const title = `t${next++} `.padEnd(500, "€");
      const response = await fetch(`${spool.url}/api/videos/demo`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title }) });
      expect(response.status).toBe(200);
      eventBytes += (await response.arrayBuffer()).byteLength;
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return eventBytes;
}

test.each(["/api/videos/events", "/api/videos/demo/events"])("%s: a client that stops reading has its stream ended, not its events kept", async (path) => {
  const before = listening();
  const stalled = await stalledStream(path);
  for (let i = 0; i < 100 && listening() === before; i++) await Bun.sleep(20);
  expect(listening()).toBe(before + 1);
  // Changes until the server has ended the stream: past what the sockets buffer (a few MB on
  // loopback) and the backlog allowed. How many that takes depends on how many changes each
  // event tells (the watch reads a changed row once for all changes made meanwhile).
  let sent = 0;
  let closed = false;
  for (let round = 0; round < 20 && !closed; round++) {
    sent += await changeTitles(500);
    closed = listening() === before;
  }
  expect(closed).toBe(true);
  expect(sent).toBeGreaterThan(EVENT_BACKLOG_BYTES);
  // Changes after the end reach nobody: the client gets what was sent before, at most.
  sent += await changeTitles(500);
  const { ended, bytes } = await stalled.resume(10_000);
  stalled.socket.destroy();
  // Ended by the server, with what the socket buffers held and less than every event sent.
  expect(ended).toBe(true);
  expect(bytes).toBeLessThan(sent);
  // The server still answers, and a new stream opens.
  const again = await fetch(`${spool.url}${path}`, { headers: AUTH });
  expect(again.status).toBe(200);
  await again.body?.cancel();
  for (let i = 0; i < 100 && listening() !== before; i++) await Bun.sleep(20);
  expect(listening()).toBe(before);
}, 60_000);
