/**
 * New clip intervals are CPU a client could multiply without end (the interval has microsecond
 * resolution): a real server, a ten-minute video, one client asking for a hundred new clips at
 * once gets its share made and 429 `clips_rate_limited` for the rest, while another client's new
 * clips are all made; cached clips never count.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { uploadMultipart, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { makeVideo } from "../helpers/media.ts";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { DEFAULT_CLIP_BUILDS } from "../../src/files/clip.ts";

let spool: TestSpool;
let video: VideoJson;
beforeAll(async () => {
  // TRUST_PROXY: clients are told apart by X-Forwarded-For.
  spool = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"], trustProxy: true });
  const response = await uploadMultipart(spool.url, await makeVideo({ seconds: 600, width: 160, height: 120 }), { name: "long.mp4", type: "video/mp4" });
  video = await waitUntilSettled(spool.url, ((await response.json()) as VideoJson).id, 60_000);
  expect(video.status).toBe("ready");
}, 90_000);
afterAll(() => spool?.stop());

const clip = (start: string, client: string) => fetch(`${spool.url}/api/stream/${video.id}?start=${start}&end=599`, { method: "HEAD", headers: { "x-forwarded-for": client } });

test("one client's flood of new intervals: its share is made, the rest get 429 with Retry-After; another client's new clips are made meanwhile; a made clip is served to the flooder at once", async () => {
  const share = Math.floor((DEFAULT_CLIP_BUILDS.concurrency + DEFAULT_CLIP_BUILDS.queue) / 2);
  const flood = Array.from({ length: 120 }, (_, i) => clip(`${i}.${String(i * 7919).padStart(6, "0")}`, "203.0.113.7"));
  const other = Array.from({ length: 5 }, (_, i) => clip(`${300 + i}.5`, "198.51.100.9"));
  const [flooded, others] = await Promise.all([Promise.all(flood), Promise.all(other)]);
  const statuses = flooded.map((r) => r.status);
  expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
  expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(share);
  const refused = flooded.filter((r) => r.status === 429);
  expect(refused.length).toBeGreaterThan(0);
  expect(refused[0]!.headers.get("retry-after")).toBe("1");
  const body = (await (await fetch(`${spool.url}/api/stream/${video.id}?start=${"0.000000"}&end=599`, { headers: { "x-forwarded-for": "203.0.113.7" } })).arrayBuffer()).byteLength;
  expect(body).toBeGreaterThan(0);
  expect(others.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
  // A GET of a refused interval, once the flood is over, is made (nothing was kept from the refusal).
  const again = await fetch(`${spool.url}/api/stream/${video.id}?start=119.${String(119 * 7919).padStart(6, "0")}&end=599`, { headers: { "x-forwarded-for": "203.0.113.7" } });
  expect(again.status).toBe(200);
  expect(again.headers.get("content-type")).toBe("video/mp4");
  await again.arrayBuffer();
}, 60_000);

test("a GET refused for its share gets Spool's JSON error", async () => {
  const flood = await Promise.all(Array.from({ length: 80 }, (_, i) => fetch(`${spool.url}/api/stream/${video.id}?start=${i}.25&end=599`, { headers: { "x-forwarded-for": "203.0.113.8" } })));
  const refused = flood.find((r) => r.status === 429);
  expect(refused).toBeDefined();
  expect(refused!.headers.get("content-type")).toStartWith("application/json");
  expect(((await refused!.json()) as { error: { code: string } }).error.code).toBe("clips_rate_limited");
  await Promise.all(flood.filter((r) => r !== refused).map((r) => r.body?.cancel()));
}, 60_000);
