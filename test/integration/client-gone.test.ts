/**
 * A client that hangs up before its JSON body ends is nobody's fault: logged as 499 (nginx's
 * "client closed request"), never as an unhandled error and a 500 (found by an audit).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { AUTH, startTestSpool, withCapturedLogs, type TestSpool } from "../helpers/spool.ts";

let spool: TestSpool;
beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: true });
});
afterAll(() => spool?.stop());

/** Sends the head and part of a body promising more, then closes the connection. */
function hangUp(head: string, part: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(spool.port, "127.0.0.1", () => {
      socket.write(head + part);
      setTimeout(() => socket.destroy(), 100);
    });
    socket.on("close", () => resolve());
    socket.on("error", reject);
  });
}

test.each([
  ["POST", "/api/session", "/api/session", {}],
  ["PATCH", "/api/videos/demo", "/api/videos/:id", AUTH],
] as const)("%s %s cut short mid-body: logged 499, no unhandled error", async (method, path, route, auth) => {
  const logged = await withCapturedLogs(async (lines) => {
    const extra = Object.entries(auth).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    await hangUp(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n`, '{"title":');
    const mine = () => lines().filter((l) => l.route === route || l.msg === "unhandled error");
    for (let i = 0; i < 250 && mine().length === 0; i++) await Bun.sleep(20);
    await Bun.sleep(50);
    return mine().map((l) => [l.msg, l.status]);
  });
  expect(logged).toEqual([["request", 499]]);
  // The server lives on.
  expect((await fetch(`${spool.url}/health`)).status).toBe(200);
});
