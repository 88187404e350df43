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

/** `count` title changes of the demo, each an event of about 1.4 KB on every stream. */
async function changeTitles(count: number): Promise<number> {
  let next = 0;
  let eventBytes = 0;
  const worker = async () => {
    while (next < count) {
      const title = `t${next++} `.padEnd(500, "x");
      const response = await fetch(`${spool.url}/api/videos/demo`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title }) });
      expect(response.status).toBe(200);
      eventBytes += (await response.text()).length;
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return eventBytes;
}

test.each(["/api/videos/events", "/api/videos/demo/events"])("%s: a client that stops reading has its stream ended, not its events kept", async (path) => {
  const stalled = await stalledStream(path);
  // More than the sockets' buffers (a few MB on loopback) and the backlog allowed.
  const sent = await changeTitles(4500);
  expect(sent).toBeGreaterThan(EVENT_BACKLOG_BYTES + 4 * 1024 * 1024);
  const { ended, bytes } = await stalled.resume(10_000);
  stalled.socket.destroy();
  // Ended by the server, with what the socket buffers held and less than every event sent.
  expect(ended).toBe(true);
  expect(bytes).toBeLessThan(sent);
  // The server still answers, and a new stream opens.
  const again = await fetch(`${spool.url}${path}`, { headers: AUTH });
  expect(again.status).toBe(200);
  await again.body?.cancel();
}, 60_000);
