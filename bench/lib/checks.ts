/**
 * Correctness checks run before any timing, so a broken target cannot look fast: status codes,
 * exact bytes of sample ranges (compared with the source file), Content-Range / Content-Length /
 * Accept-Ranges, validators and 304 revalidation where the target claims them.
 */
import type { MediaFile } from "./media.ts";
import type { MixRequest } from "./player-mix.ts";
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

/** Check one `bytes=start-end` (or open-ended `bytes=start-`) request (on `path`, default the file's URL). */
async function checkRange(t: Running, m: MediaFile, start: number, end: number | null, items: CheckItem[], path = t.paths[m.key] ?? "", label = m.key): Promise<void> {
  const last = end === null ? m.size - 1 : Math.min(end, m.size - 1);
  const spec = `bytes=${start}-${end === null ? "" : end}`;
  const name = `${label} ${spec}`;
  try {
    const res = await get(t.baseUrl + path, { Range: spec });
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

/** The player-start mix's library and the first requests of its list, to check before timing. */
export interface MixCheck {
  library: MediaFile[];
  requests: MixRequest[];
}

export async function checkTarget(t: Running, main: MediaFile, others: MediaFile[], mix?: MixCheck): Promise<CheckReport> {
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

  if (mix) await checkMix(t, mix, items);
  if (t.caps.api) await checkApi(t, items);
  if (t.id === "spool") await checkSigned(t, main, mid, items);
  if (t.metrics !== undefined) await checkMetrics(t, url, items);

  return { id: t.id, ok: items.every((i) => i.ok || !i.mandatory), items, etag };
}

/**
 * The player-start mix: every library video has a URL on this target and answers its last 4 KiB
 * exactly, the first requests of the list answer 206 with the exact bytes of that video (so a
 * target that mixed the videos up fails: each file's moov is its own), and Chrome's real first
 * request, an open-ended `bytes=0-` on the most popular video, answers 206 with the whole file. Spool must also give the videos different
 * ETags (its RAM tier keys blocks by path and ETag).
 */
async function checkMix(t: Running, mix: MixCheck, items: CheckItem[]): Promise<void> {
  const missing = mix.library.filter((m) => t.paths[m.key] === undefined).map((m) => m.key);
  items.push({ name: `library: all ${mix.library.length} videos served`, ok: missing.length === 0, mandatory: true, detail: missing.length ? `no URL for ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}` : undefined });
  if (missing.length) return;
  // Every video once: its last 4 KiB (the files differ there; their first bytes are all `ftyp`).
  const wrong: string[] = [];
  for (const m of mix.library) {
    const start = Math.max(0, m.size - 4096);
    try {
      const res = await get(t.baseUrl + (t.paths[m.key] ?? ""), { Range: `bytes=${start}-${m.size - 1}` });
      const body = new Uint8Array(await res.arrayBuffer());
      if (res.status !== 206 || res.headers.get("content-range") !== `bytes ${start}-${m.size - 1}/${m.size}` || !sameBytes(body, await fileSlice(m.path, start, m.size - 1))) {
        wrong.push(`${m.key} (${res.status})`);
      }
    } catch (e) {
      wrong.push(`${m.key} (${String(e).slice(0, 80)})`);
    }
  }
  items.push({
    name: `library: the last 4 KiB of each of the ${mix.library.length} videos, 206 + exact bytes`,
    ok: wrong.length === 0,
    mandatory: true,
    detail: wrong.length ? `wrong: ${wrong.slice(0, 5).join(", ")}${wrong.length > 5 ? `, … (${wrong.length})` : ""}` : undefined,
  });
  for (const r of mix.requests) {
    const m = mix.library[r.video] as MediaFile;
    await checkRange(t, m, r.start, r.end, items, t.paths[m.key], `mix ${m.key}`);
  }
  const top = mix.library[0] as MediaFile;
  await checkRange(t, top, 0, null, items, t.paths[top.key], `mix ${top.key}`);
  if (t.id === "spool") {
    const tags = new Set<string>();
    for (const m of mix.library.slice(0, 5)) {
      try {
        const res = await get(t.baseUrl + (t.paths[m.key] ?? ""), { Range: "bytes=0-1" });
        await res.arrayBuffer();
        tags.add(res.headers.get("etag") ?? "");
      } catch {}
    }
    items.push({ name: "library: five videos, five ETags", ok: tags.size === 5 && !tags.has(""), mandatory: true, detail: `${tags.size} distinct` });
  }
}

/** An error answer's `error.code` (Spool's JSON errors: `{"error": {"code", "message"}}`). */
async function errorCode(res: Response): Promise<string | undefined> {
  try {
    const body = (await res.json()) as { error?: { code?: unknown } };
    return typeof body.error?.code === "string" ? body.error.code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `GET /api/videos`, as the `api` workload sends it (with the target's API headers): 200 and a
 * JSON page with items. Where the target needs a key (Spool), the same request without it must
 * answer 401, so the timed row includes checking the key.
 */
async function checkApi(t: Running, items: CheckItem[]): Promise<void> {
  const url = `${t.baseUrl}/api/videos`;
  try {
    const res = await get(url, { Accept: "application/json", ...(t.apiHeaders ?? {}) });
    const text = await res.text();
    let count = -1;
    try {
      const body = JSON.parse(text) as { items?: unknown };
      if (Array.isArray(body.items)) count = body.items.length;
    } catch {}
    const ok = res.status === 200 && count > 0;
    items.push({
      name: `GET /api/videos${t.apiHeaders ? " with the API key" : ""}: 200 + items`,
      ok,
      mandatory: true,
      detail: ok ? `${count} items` : `status ${res.status}, ${count < 0 ? `no items array: ${text.slice(0, 200)}` : `${count} items`}`,
    });
  } catch (e) {
    items.push({ name: "GET /api/videos", ok: false, mandatory: true, detail: String(e) });
  }
  if (!t.apiHeaders) return;
  try {
    const res = await get(url, { Accept: "application/json" });
    const code = await errorCode(res);
    items.push({
      name: "GET /api/videos without the key: 401",
      ok: res.status === 401 && code === "unauthorized",
      mandatory: true,
      detail: res.status === 401 && code === "unauthorized" ? undefined : `status ${res.status}, code ${JSON.stringify(code)}`,
    });
  } catch (e) {
    items.push({ name: "GET /api/videos without the key", ok: false, mandatory: true, detail: String(e) });
  }
}

/**
 * Spool's signed copy of the main video (the `signed` workload): a token was minted; without it
 * the stream answers 403 `token_missing`, with a forged one 403 `token_invalid` (the token is
 * really verified); with it, 206 and the exact bytes.
 */
async function checkSigned(t: Running, main: MediaFile, mid: number, items: CheckItem[]): Promise<void> {
  const s = t.signed;
  if (!s) {
    items.push({ name: "signed video ingested", ok: false, mandatory: true, detail: "no signed copy of the main video" });
    return;
  }
  items.push({ name: "signed: token minted (POST /api/videos/:id/tokens)", ok: !!s.path, mandatory: true, detail: s.error });
  const range = { Range: `bytes=${mid}-${mid + 65_535}` };
  const refused = async (name: string, path: string, want: string): Promise<void> => {
    try {
      const res = await get(t.baseUrl + path, range);
      const code = await errorCode(res);
      const ok = res.status === 403 && code === want;
      items.push({ name, ok, mandatory: true, detail: ok ? undefined : `status ${res.status}, code ${JSON.stringify(code)} (want 403 ${want})` });
    } catch (e) {
      items.push({ name, ok: false, mandatory: true, detail: String(e) });
    }
  };
  await refused("signed: no token -> 403 token_missing", s.tokenlessPath, "token_missing");
  if (!s.token || !s.path) return;
  // Change one character in the middle of the signature: a well-formed token that fails the HMAC.
  const dot = s.token.lastIndexOf(".");
  const at = dot + 1 + Math.floor((s.token.length - dot - 1) / 2);
  const forged = s.token.slice(0, at) + (s.token[at] === "A" ? "B" : "A") + s.token.slice(at + 1);
  await refused("signed: forged token -> 403 token_invalid", `${s.tokenlessPath}?token=${encodeURIComponent(forged)}`, "token_invalid");
  await checkRange(t, main, mid + 7, mid + 7 + 65_535, items, s.path, "signed");
  await checkRange(t, main, 0, 1, items, s.path, "signed");
}

/**
 * The value of the sample `name{labels}` in a Prometheus text answer (every label given must match;
 * others may be present), or null when absent.
 */
export function promValue(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) continue;
    const m = /^[^{\s]+(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const have = m[1] ?? "";
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) return Number(m[2]);
  }
  return null;
}

/** What Spool's /metrics says of its RAM tier: blocks held and lookups so far (null fields when absent). */
export interface TierStats {
  bytes: number | null;
  hits: number | null;
  misses: number | null;
  evictions: number | null;
  /** Bytes of parsed `moov`s and clip headers held (spool_clip_header_cache_bytes): another bounded cache in the RSS. */
  clipHeaderBytes: number | null;
}

/** Scrapes a Spool target's /metrics (with its API key) for the RAM tier; null when it has none or fails. */
export async function scrapeTier(t: Running): Promise<TierStats | null> {
  if (!t.metrics) return null;
  try {
    const res = await get(`${t.baseUrl}/metrics`, t.apiHeaders ?? {});
    const text = await res.text();
    if (res.status !== 200) return null;
    return {
      bytes: promValue(text, "spool_memory_tier_bytes"),
      hits: promValue(text, "spool_cache_lookups_total", { cache: "memory_tier", result: "hit" }),
      misses: promValue(text, "spool_cache_lookups_total", { cache: "memory_tier", result: "miss" }),
      evictions: promValue(text, "spool_memory_tier_evictions_total"),
      clipHeaderBytes: promValue(text, "spool_clip_header_cache_bytes"),
    };
  } catch {
    return null;
  }
}

/** `spool_stream_responses_total{status="206"} N` in a Prometheus text answer (null when absent). */
export function streamCount(text: string, status: number): number | null {
  const m = new RegExp(`^spool_stream_responses_total\\{[^}]*status="${status}"[^}]*\\}\\s+(\\S+)`, "m").exec(text);
  return m ? Number(m[1]) : null;
}

/**
 * Spool's two targets differ in METRICS only, so prove it: with metrics on, `GET /metrics` with
 * the key answers 200 in Prometheus format and counts the stream's 206 answers (one more after
 * one more range), and 401 without the key; with METRICS=0 it answers 404 even with the key.
 * Both put an X-Request-Id on stream answers (a warning only: the id is not what is compared).
 */
async function checkMetrics(t: Running, streamUrl: string, items: CheckItem[]): Promise<void> {
  const url = `${t.baseUrl}/metrics`;
  const scrape = async (headers: Record<string, string>) => {
    const res = await get(url, headers);
    return { status: res.status, text: await res.text(), type: res.headers.get("content-type") ?? "" };
  };
  try {
    const res = await get(streamUrl, { Range: "bytes=0-1" });
    await res.arrayBuffer();
    const id = res.headers.get("x-request-id");
    items.push({ name: "stream answers carry X-Request-Id", ok: !!id, mandatory: false, detail: id ? undefined : "no X-Request-Id header" });
  } catch (e) {
    items.push({ name: "stream answers carry X-Request-Id", ok: false, mandatory: false, detail: String(e) });
  }
  try {
    if (t.metrics) {
      const before = await scrape(t.apiHeaders ?? {});
      const n0 = streamCount(before.text, 206);
      const ok = before.status === 200 && before.type.startsWith("text/plain") && n0 !== null && n0 > 0;
      items.push({
        name: "GET /metrics with the key: 200, stream 206 answers counted",
        ok,
        mandatory: true,
        detail: ok ? `spool_stream_responses_total{status="206"} ${n0}` : `status ${before.status}, ${before.type}, 206 count ${n0}: ${before.text.slice(0, 200)}`,
      });
      const res = await get(streamUrl, { Range: "bytes=0-1" });
      await res.arrayBuffer();
      const n1 = streamCount((await scrape(t.apiHeaders ?? {})).text, 206);
      items.push({
        name: "metrics on: one more 206 counted after one more range",
        ok: n0 !== null && n1 === n0 + 1,
        mandatory: true,
        detail: `${n0} -> ${n1}`,
      });
      const anon = await scrape({});
      items.push({ name: "GET /metrics without the key: 401", ok: anon.status === 401, mandatory: true, detail: anon.status === 401 ? undefined : `status ${anon.status}` });
    } else {
      const off = await scrape(t.apiHeaders ?? {});
      items.push({
        name: "METRICS=0: GET /metrics with the key answers 404",
        ok: off.status === 404,
        mandatory: true,
        detail: off.status === 404 ? undefined : `status ${off.status}: ${off.text.slice(0, 200)}`,
      });
    }
  } catch (e) {
    items.push({ name: "GET /metrics", ok: false, mandatory: true, detail: String(e) });
  }
}

/** A time clip (`?start=&end=`) on one target, checked before its clip workloads. */
export interface ClipCheck {
  /** The clip's length as this target answers it (its whole-clip GET); null when the checks failed. */
  size: number | null;
  items: CheckItem[];
}

/**
 * A clip URL on one target, before timing: a whole GET answers 200 with an MP4 (`ftyp` first)
 * whose length is the Content-Length when one is sent (the clip's size as this target reports
 * it: Spool's frame-exact clip and nginx's differ); three 64 KiB-ish ranges (the head, an
 * unaligned one in the middle, the tail) answer 206 with `bytes a-b/<that size>` and exactly the
 * bytes of that GET. With `kept` (Spool, CLIP_CACHE_BYTES on), the first GET starts writing the
 * clip to a file of its own in the background; the check then waits (at most 20 s) until a
 * whole GET answers with a Content-Length and without chunking, i.e. from the kept file by
 * sendfile, and with the same bytes, so the timed whole-clip GETs measure the kept clip (as a
 * popular clip is served), not the first-time stream.
 */
export async function checkClip(t: Running, path: string, label: string, kept: boolean): Promise<ClipCheck> {
  const items: CheckItem[] = [];
  const url = t.baseUrl + path;
  let clip: Uint8Array;
  try {
    const res = await get(url);
    clip = new Uint8Array(await res.arrayBuffer());
    const problems: string[] = [];
    if (res.status !== 200) problems.push(`status ${res.status} (want 200)`);
    const cl = res.headers.get("content-length");
    if (cl !== null && Number(cl) !== clip.length) problems.push(`Content-Length ${cl}, body ${clip.length} bytes`);
    if (clip.length < 16 || Buffer.from(clip.subarray(4, 8)).toString("latin1") !== "ftyp") problems.push(`not an MP4 (first box ${JSON.stringify(Buffer.from(clip.subarray(4, 8)).toString("latin1"))})`);
    const ct = res.headers.get("content-type") ?? "";
    if (!ct.startsWith("video/mp4")) problems.push(`Content-Type ${JSON.stringify(ct)}`);
    items.push({ name: `${label}: GET the whole clip: 200, an MP4 of its Content-Length`, ok: problems.length === 0, mandatory: true, detail: problems.join("; ") || `${clip.length} bytes` });
    if (problems.length) return { size: null, items };
  } catch (e) {
    items.push({ name: `${label}: GET the whole clip`, ok: false, mandatory: true, detail: String(e) });
    return { size: null, items };
  }
  const size = clip.length;
  const mid = Math.floor(size / 2) + 4_093;
  const ranges: [number, number][] = [
    [0, Math.min(size, 65_536) - 1],
    [Math.min(mid, size - 1), Math.min(mid + 65_535, size - 1)],
    [Math.max(0, size - 1000), size - 1],
  ];
  for (const [a, b] of ranges) {
    const name = `${label}: bytes=${a}-${b} of the clip: 206 + the GET's bytes`;
    try {
      const res = await get(url, { Range: `bytes=${a}-${b}` });
      const body = new Uint8Array(await res.arrayBuffer());
      const problems: string[] = [];
      if (res.status !== 206) problems.push(`status ${res.status} (want 206)`);
      const cr = res.headers.get("content-range");
      if (cr !== `bytes ${a}-${b}/${size}`) problems.push(`Content-Range ${JSON.stringify(cr)} (want "bytes ${a}-${b}/${size}")`);
      if (!sameBytes(body, clip.subarray(a, b + 1))) problems.push(`body differs from the whole clip's bytes (${body.length} bytes received)`);
      items.push({ name, ok: problems.length === 0, mandatory: true, detail: problems.join("; ") || undefined });
    } catch (e) {
      items.push({ name, ok: false, mandatory: true, detail: String(e) });
    }
  }
  if (kept) {
    const name = `${label}: the whole clip comes from the kept file (Content-Length, not chunked; same bytes)`;
    const started = performance.now();
    let detail = "";
    let ok = false;
    while (performance.now() - started < 20_000) {
      try {
        const res = await get(url);
        const body = new Uint8Array(await res.arrayBuffer());
        const cl = res.headers.get("content-length");
        const te = res.headers.get("transfer-encoding");
        if (res.status === 200 && cl !== null && Number(cl) === size && !te) {
          ok = sameBytes(body, clip);
          detail = ok ? `after ${Math.round(performance.now() - started)} ms` : "kept, but its bytes differ from the first GET's";
          break;
        }
        detail = `still ${te ? `Transfer-Encoding: ${te}` : `status ${res.status}, Content-Length ${cl}`} after ${Math.round(performance.now() - started)} ms`;
      } catch (e) {
        detail = String(e);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    items.push({ name, ok, mandatory: true, detail });
  }
  return { size: items.every((i) => i.ok || !i.mandatory) ? size : null, items };
}
