/**
 * A TCP relay between Spool and a real server (PostgreSQL, a bucket) that can be frozen: while
 * frozen it reads nothing from either side, so requests and answers wait in the kernel's
 * buffers, as across a network partition or with a stalled host. Thawed, everything flows on.
 */
import { createConnection, createServer, type Socket } from "node:net";

export interface Relay {
  port: number;
  /** Connections opened through the relay so far. */
  readonly connections: number;
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

export async function startRelay(host: string, port: number): Promise<Relay> {
  let frozen = false;
  let connections = 0;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    if (frozen) socket.pause();
  };
  const server = createServer((client) => {
    connections++;
    const upstream = createConnection({ host, port });
    track(client);
    track(upstream);
    // Not pipe(): its backpressure handling resumes a paused source on 'drain'. A test's
    // traffic is small enough to write without it.
    client.on("data", (data) => upstream.write(data));
    upstream.on("data", (data) => client.write(data));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("relay: no port");
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    freeze() {
      frozen = true;
      for (const socket of sockets) socket.pause();
    },
    thaw() {
      frozen = false;
      for (const socket of sockets) socket.resume();
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
