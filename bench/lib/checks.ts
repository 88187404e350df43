/**
 * Correctness checks run before any timing, so a broken target cannot look fast: status codes,
 * exact bytes of sample ranges (compared with the source file), Content-Range / Content-Length /
 * Accept-Ranges, validators and 304 revalidation where the target claims them.
 */
import type { MediaFile } from "./media.ts";
import type { Running } from "./targets.ts";

export interface CheckItem {
  name: string;
  ok: boolean;
  /** A failed mandatory item fails the target. */
  mandatory: boolean;
  detail?: string;
}

export interface CheckReport {
  id: string;
  ok: boolean;
  items: CheckItem[];
  /** The main file's validator, used by the If-None-Match workload. */
  etag?: string;
}

async function fileSlice(path: string, start: number, endInclusive: number): Promise<Uint8Array> {
  return await Bun.file(path).slice(start, endInclusive + 1).bytes();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, { headers, signal: AbortSignal.timeout(30_000), redirect: "manual" });
}

/** Check one `bytes=start-end` (or open-ended `bytes=start-`) request. */
async function checkRange(t: Running, m: MediaFile, start: number, end: number | null, items: CheckItem[]): Promise<void> {
  const last = end === null ? m.size - 1 : Math.min(end, m.size - 1);
  const spec = `bytes=${start}-${end === null ? "" : end}`;
  const name = `${m.key} ${spec}`;
  try {
    const res = await get(t.baseUrl + (t.paths[m.key] ?? ""), { Range: spec });
    const body = new Uint8Array(await res.arrayBuffer());
    const problems: string[] = [];
    if (res.status !== 206) problems.push(`status ${res.status} (want 206)`);
    const cr = res.headers.get("content-range");
    if (cr !== `bytes ${start}-${last}/${m.size}`) problems.push(`Content-Range ${JSON.stringify(cr)} (want "bytes ${start}-${last}/${m.size}")`);
    const cl = res.headers.get("content-length");
    if (cl !== null && Number(cl) !== last - start + 1) problems.push(`Content-Length ${cl} (want ${last - start + 1})`);
    if (!sameBytes(body, await fileSlice(m.path, start, last))) problems.push(`body differs from the file (${body.length} bytes received)`);
    items.push({ name, ok: problems.length === 0, mandatory: true, detail: problems.join("; ") || undefined });
  } catch (e) {
    items.push({ name, ok: false, mandatory: true, detail: String(e) });
  }
}

export async function checkTarget(t: Running, main: MediaFile, others: MediaFile[]): Promise<CheckReport> {
  const items: CheckItem[] = [];
  const url = t.baseUrl + (t.paths[main.key] ?? "");
  let etag: string | undefined;

  // Whole file: 200, exact bytes, length, Accept-Ranges, validators.
  try {
    const res = await get(url);
    const body = new Uint8Array(await res.arrayBuffer());
    const problems: string[] = [];
    if (res.status !== 200) problems.push(`status ${res.status}`);
    if (Number(res.headers.get("content-length")) !== main.size) problems.push(`Content-Length ${res.headers.get("content-length")}`);
    if (!sameBytes(body, await Bun.file(main.path).bytes())) problems.push(`body differs (${body.length} bytes)`);
    items.push({ name: "GET whole file: 200 + exact bytes", ok: problems.length === 0, mandatory: true, detail: problems.join("; ") || undefined });
    const ar = res.headers.get("accept-ranges");
    // Bun.serve itself sends Accept-Ranges only on 206 answers; the bare peer stays bare, so this is
    // a warning there and a requirement everywhere else.
    items.push({ name: "Accept-Ranges: bytes on 200", ok: ar === "bytes", mandatory: t.id !== "bun", detail: ar === "bytes" ? undefined : `got ${JSON.stringify(ar)}` });
    const ct = res.headers.get("content-type") ?? "";
    items.push({ name: "Content-Type video/mp4", ok: ct.startsWith("video/mp4"), mandatory: false, detail: ct.startsWith("video/mp4") ? undefined : `got ${JSON.stringify(ct)}` });
    if (t.caps.etag) {
      etag = res.headers.get("etag") ?? undefined;
      items.push({ name: "ETag present", ok: !!etag, mandatory: true });
      if (t.id === "spool") items.push({ name: "ETag is strong", ok: !!etag && !etag.startsWith("W/"), mandatory: true, detail: etag });
    }
    if (t.caps.lastModified) {
      const lm = res.headers.get("last-modified");
      items.push({ name: "Last-Modified present", ok: !!lm && !Number.isNaN(Date.parse(lm)), mandatory: true, detail: lm ?? undefined });
    }
  } catch (e) {
    items.push({ name: "GET whole file", ok: false, mandatory: true, detail: String(e) });
  }

  // Sample ranges on the main file: first bytes (probe), an aligned 64 KiB, an unaligned 64 KiB and
  // 1 MiB from the middle, the tail, and an open-ended range.
  const mid = Math.floor(main.size / 2) + 12_345;
  const ranges: [number, number | null][] = [
    [0, 1],
    [0, 65_535],
    [mid, mid + 65_535],
    [mid + 7, mid + 7 + 1_048_575],
    [main.size - 1000, main.size - 1],
    [main.size - 100, null],
  ];
  for (const [a, b] of ranges) await checkRange(t, main, a, b, items);

  // Revalidation.
  if (t.caps.etag && etag) {
    try {
      const res = await get(url, { "If-None-Match": etag });
      const body = await res.arrayBuffer();
      items.push({
        name: "If-None-Match -> 304, empty body",
        ok: res.status === 304 && body.byteLength === 0,
        mandatory: true,
        detail: res.status === 304 ? undefined : `status ${res.status}`,
      });
      const res2 = await get(url, { "If-None-Match": '"definitely-not-the-etag"' });
      await res2.arrayBuffer();
      items.push({ name: "stale If-None-Match -> 200", ok: res2.status === 200, mandatory: true, detail: `status ${res2.status}` });
    } catch (e) {
      items.push({ name: "If-None-Match", ok: false, mandatory: true, detail: String(e) });
    }
  }

  // Size-sweep files: a range near the start and an unaligned one near the end.
  for (const m of others) {
    if (t.paths[m.key] === undefined) {
      items.push({ name: `${m.key} served`, ok: false, mandatory: true, detail: "no URL for this file" });
      continue;
    }
    const tail = Math.max(0, m.size - 65_536 - 4_093);
    await checkRange(t, m, 0, Math.min(m.size - 1, 65_535), items);
    await checkRange(t, m, tail, tail + 65_535, items);
  }

  return { id: t.id, ok: items.every((i) => i.ok || !i.mandatory), items, etag };
}
