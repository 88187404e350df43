/** Small HTTP tools for tests that need more control than fetch gives. */
import { connect } from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Sends `requestText` verbatim over a fresh TCP connection (so paths reach the server exactly
 * as written, `..` and all) and reads until the server closes.
 */
export function rawRequest(port: number, requestText: string, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("raw request timed out"));
    }, timeoutMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const split = all.indexOf("\r\n\r\n");
      const head = all.subarray(0, split).toString("latin1").split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(":");
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(head[0]?.split(" ")[1]), headers, body: all.subarray(split + 4) });
    });
    socket.write(requestText);
  });
}

export function get(port: number, path: string, extra = ""): Promise<RawResponse> {
  return rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}\r\n`);
}

/**
 * Headers as a plain object, minus the ones that legitimately differ between two responses:
 * the date, and the request id every answer carries (checked in operations.test.ts).
 */
export function comparableHeaders(response: Response, drop: string[] = ["date", "x-request-id"]): Record<string, string> {
  const out: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    if (!drop.includes(key)) out[key] = value;
  });
  return out;
}

export interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

/** Parses a multipart/byteranges body strictly: CRLFs, boundary lines and the closing delimiter. */
export function parseMultipart(body: Buffer, boundary: string): Part[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let pos = body.indexOf(delimiter);
  if (pos !== 0) throw new Error("multipart body must start with the boundary");
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === "--") {
      if (body.subarray(pos + 2).toString() !== "\r\n") throw new Error("junk after the closing delimiter");
      return parts;
    }
    if (body.subarray(pos, pos + 2).toString() !== "\r\n") throw new Error("boundary line must end with CRLF");
    pos += 2;
    const headEnd = body.indexOf("\r\n\r\n", pos);
    const headers: Record<string, string> = {};
    for (const line of body.subarray(pos, headEnd).toString().split("\r\n")) {
      const i = line.indexOf(":");
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const next = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), headEnd + 4);
    if (next < 0) throw new Error("unterminated part");
    parts.push({ headers, body: body.subarray(headEnd + 4, next) });
    pos = next + 2;
  }
}

export interface RawAnswer {
  /** Body bytes written before the answer arrived. */
  sent: number;
  status: number;
  body: string;
}

/**
 * Sends `head` over a raw socket, then whatever `produce` writes as the body (chunked framing
 * when `chunked`), and resolves as soon as a whole answer (status, headers, Content-Length body)
 * has arrived, however much of the body the client meant to send: for refusals mid-upload.
 */
export function sendUntilAnswered(
  port: number,
  head: string,
  chunked: boolean,
  produce: (write: (data: Buffer) => void, stop: () => boolean, sent: () => number) => Promise<void>,
): Promise<RawAnswer> {
  return new Promise((done, fail) => {
    let sent = 0;
    let answered = false;
    let response = "";
    const socket = connect(port, "127.0.0.1", async () => {
      socket.write(head);
      const write = (data: Buffer) => {
        if (chunked) socket.write(`${data.length.toString(16)}\r\n`);
        socket.write(data);
        if (chunked) socket.write("\r\n");
        sent += data.length;
      };
      await produce(write, () => answered || socket.destroyed, () => sent);
    });
    socket.on("data", (data) => {
      response += data.toString("latin1");
      const end = response.indexOf("\r\n\r\n");
      const length = /content-length: (\d+)/i.exec(response)?.[1];
      if (!answered && end > 0 && length && response.length >= end + 4 + Number(length)) {
        answered = true;
        socket.destroy();
        done({ sent, status: Number(response.split(" ")[1]), body: response.slice(end + 4) });
      }
    });
    socket.on("error", (error) => answered || fail(error));
    socket.on("close", () => answered || fail(new Error(`closed without an answer after ${sent} bytes`)));
  });
}

/** A loopback server that sends `bytes` slowly (`chunk` bytes every `delayMs`), for downloads that take a while. */
export function slowSource(bytes: Uint8Array, chunk: number, delayMs: number): ReturnType<typeof Bun.serve> {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => {
      let offset = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (offset >= bytes.length) return controller.close();
          await Bun.sleep(delayMs);
          controller.enqueue(bytes.slice(offset, (offset += chunk)));
        },
      });
      return new Response(body, { headers: { "content-type": "video/mp4" } });
    },
  });
}
