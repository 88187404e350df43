import { createReadStream } from "node:fs";

/** Hex SHA-256 of a file, streamed: never the whole file in memory. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hasher = new Bun.CryptoHasher("sha256");
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hasher.update(chunk as Buffer);
    size += (chunk as Buffer).byteLength;
  }
  return { sha256: hasher.digest("hex"), size };
}
