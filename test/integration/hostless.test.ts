/**
 * Requests without a usable Host: Bun 1.4.5 gives an HTTP/1.0 request without Host, or one whose
 * Host is no valid authority (`x#`, `x:abc`), a URL that is the path alone or one no parser
 * takes. Code that made a URL of it answered 500 and logged an upload URL's secret in the
 * error's message (found by an audit). They are answered as any request, and no log line holds
 * a secret.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rawRequest } from "../helpers/http.ts";
import { AUTH, startTestSpool, withCapturedLogs, type TestSpool } from "../helpers/spool.ts";

let spool: TestSpool;
beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false });
});
afterAll(() => spool?.stop());

const TUS = { "tus-resumable": "1.0.0" };

test("tus: an HTTP/1.0 PATCH and HEAD without Host, and a direct upload's creation with an invalid Host, are answered as tus answers them; nothing logs a secret", async () => {
  const created = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, ...TUS, "upload-length": "3" } });
  expect(created.status).toBe(201);
  const location = created.headers.get("location")!;
  const secret = location.slice(location.lastIndexOf(".") + 1);
  const issued = (await (await fetch(`${spool.url}/api/uploads/direct`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: "{}" })).json()) as { uploadUrl: string };
  const directSecret = issued.uploadUrl.slice(issued.uploadUrl.lastIndexOf("/") + 1);

  const logged = await withCapturedLogs(async (lines) => {
    const patch = await rawRequest(spool.port, `PATCH ${location} HTTP/1.0\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 2\r\n\r\nab`);
    expect(patch.status).toBe(204);
    expect(patch.headers["upload-offset"]).toBe("2");
    const head = await rawRequest(spool.port, `HEAD ${location} HTTP/1.0\r\nTus-Resumable: 1.0.0\r\n\r\n`);
    expect(head.status).toBe(200);
    expect(head.headers["upload-offset"]).toBe("2");
    const direct = await rawRequest(spool.port, `POST ${issued.uploadUrl} HTTP/1.1\r\nHost: x#\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    expect(direct.status).toBe(201);
    expect(direct.headers.location).toStartWith("/api/uploads/");
    return lines();
  });
  const text = JSON.stringify(logged);
  expect(logged.filter((l) => (l.level as number) >= 50)).toEqual([]);
  expect(text).not.toContain(secret);
  expect(text).not.toContain(directSecret);
});

test("a signed-in change without a usable Host: 403 (its origin cannot be ours), never a 500", async () => {
  for (const host of ["Host: x#\r\n", "Host: x:abc\r\n", ""]) {
    const version = host ? "HTTP/1.1" : "HTTP/1.0";
    const answer = await rawRequest(spool.port, `POST /api/session ${version}\r\n${host}Origin: http://x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect({ host, status: answer.status }).toEqual({ host, status: 403 });
  }
});
