/**
 * "incomplete file: 3.1 MB of an MP4 whose index expects 10.7 MB": what a truncated ISO BMFF file
 * (a download or copy cut short) is told at probe time, instead of the box scanner's
 * `box "mdat" at 33559 overruns the file`. Pure: given the top-level boxes as their headers
 * declare them (the last one may reach past the end) and the file's real size.
 */
import { formatBytes } from "./bytes.ts";

export interface DeclaredBox {
  type: string;
  offset: number;
  /** The size its header declares (which may reach past the end of a truncated file). */
  size: number;
}

/** "an MP4", "a QuickTime (MOV) file"... from the `ftyp` major brand. */
function kindOf(majorBrand: string | undefined): string {
  const brand = majorBrand?.trim().toLowerCase();
  if (brand === "qt") return "a QuickTime (MOV) file";
  if (brand?.startsWith("3g")) return "a 3GP file";
  if (brand === "m4a" || brand === "m4b") return "an M4A file";
  return "an MP4";
}

/**
 * The message for a file whose boxes declare more bytes than it has, or null when it is whole.
 * `boxes`: top-level boxes in file order; `fileSize`: bytes on disk.
 */
export function incompleteFileMessage(boxes: readonly DeclaredBox[], fileSize: number, majorBrand?: string): string | null {
  if (!boxes.length) return null;
  const expected = Math.max(...boxes.map((b) => b.offset + b.size));
  if (expected <= fileSize) return null;
  return `incomplete file: ${formatBytes(fileSize)} of ${kindOf(majorBrand)} whose index expects ${formatBytes(expected)}`;
}

/**
 * The same from the scanner's refusal (`box "mdat" at 33559 overruns the file`) when only its
 * message is at hand: the overrunning box's declared size is needed, so this reads it from the
 * header at `offset` with `read` (8 or 16 bytes).
 */
export async function incompleteFromOverrun(message: string, read: (offset: number, length: number) => Promise<Uint8Array>, fileSize: number, majorBrand?: string): Promise<string | null> {
  const m = /^box "(.{4})" at (\d+) overruns the file$/.exec(message);
  if (!m) return null;
  const offset = Number(m[2]);
  const head = await read(offset, 16);
  if (head.length < 8) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let size = view.getUint32(0);
  if (size === 1 && head.length >= 16) size = Number(view.getBigUint64(8));
  return incompleteFileMessage([{ type: m[1]!, offset, size }], fileSize, majorBrand);
}
