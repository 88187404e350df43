/**
 * The OpenAPI description agrees with what the server answers. A real Spool (demo seeded, its
 * HLS ladder built) gets a corpus of real requests over HTTP, good and bad, covering every
 * documented operation; each answer must have (a) a status the operation declares (or its
 * `default`), (b) a JSON body that validates against the declared `application/json` schema for
 * that status (a small JSON Schema validator for the subset the spec uses, `$ref`s resolved),
 * and a content type the operation declares for it, and (c) every response header the spec
 * marks required. test/integration/openapi.test.ts checks the document's structure.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DEMO_VIDEO_ID } from "../../src/server.ts";
import { uploadMultipart, waitUntilSettled } from "../helpers/library.ts";
import { makeVideo } from "../helpers/media.ts";
import { AUTH, TEST_API_KEY, startTestSpool, type TestSpool } from "../helpers/spool.ts";

type Json = Record<string, any>;

let spool: TestSpool;
let spec: Json;
/** What the cases share: ids, tokens and URLs made along the way. */
const state: Record<string, string> = {};

/** How long the demo's HLS ladder may take (8 s of 640x360 on 2 busy cores: a few seconds). */
const HLS_WAIT_MS = 60_000;

beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: true });
  spec = (await (await fetch(`${spool.url}/swagger/json`)).json()) as Json;
  await Bun.write(`${spool.staticDir}/hello.txt`, "hello, static world\n");
  // A signed video of its own (the demo is public), for tokens and the 403s of the player routes.
  const signed = await uploadMultipart(spool.url, await makeVideo({ seconds: 1, width: 160, height: 120 }), { playback: "signed", title: "signed" });
  const video = await waitUntilSettled(spool.url, ((await signed.json()) as Json).id);
  state.signed = video.id;
  const token = (await (await fetch(`${spool.url}/api/videos/${video.id}/tokens`, { method: "POST", headers: AUTH })).json()) as Json;
  state.token = token.token;
  // The demo's ladder: its files and its storyboard.
  const deadline = Date.now() + HLS_WAIT_MS;
  for (;;) {
    const demo = (await (await fetch(`${spool.url}/api/videos/${DEMO_VIDEO_ID}`, { headers: AUTH })).json()) as Json;
    if (demo.hls?.status === "ready" || demo.hls?.status === "failed" || Date.now() > deadline) break;
    await Bun.sleep(200);
  }
  const master = await (await fetch(`${spool.url}/api/hls/${DEMO_VIDEO_ID}/master.m3u8`)).text();
  state.rendition = master.split("\n").find((line) => line.endsWith(".m3u8"))?.split("/")[0] ?? "none";
  const media = await (await fetch(`${spool.url}/api/hls/${DEMO_VIDEO_ID}/${state.rendition}/index.m3u8`)).text();
  state.segment = media.split("\n").find((line) => line && !line.startsWith("#"))?.split("?")[0] ?? "none";
  state.etag = (await fetch(`${spool.url}/api/stream/${DEMO_VIDEO_ID}`, { method: "HEAD" })).headers.get("etag") ?? "";
  state.videoEtag = (await fetch(`${spool.url}/api/videos/${DEMO_VIDEO_ID}`, { headers: AUTH })).headers.get("etag") ?? "";
}, HLS_WAIT_MS + 30_000);
afterAll(() => spool?.stop());

// ---------------------------------------------------------------------------------------------
// The spec side: finding an operation, resolving $refs, validating JSON.

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** The operation a request reaches: the documented path it matches, literal segments before templated ones. */
function findOperation(method: string, pathname: string): { key: string; op: Json } | undefined {
  const segments = pathname.split("/");
  let best: { key: string; op: Json; params: number } | undefined;
  for (const [template, item] of Object.entries(spec.paths as Json)) {
    const op = (item as Json)[method.toLowerCase()];
    if (!op) continue;
    const parts = template.split("/");
    // `{path}` of the static folder spans segments.
    const rest = parts.at(-1) === "{path}" && template.startsWith("/static/");
    if (rest ? segments.length < parts.length : segments.length !== parts.length) continue;
    let params = 0;
    let ok = true;
    for (let i = 0; i < parts.length && ok; i++) {
      if (/^\{[^}]+\}$/.test(parts[i]!)) params++;
      else ok = parts[i] === segments[i];
    }
    if (ok && (!best || params < best.params)) best = { key: `${method.toUpperCase()} ${template}`, op, params };
  }
  return best;
}

function resolve(node: unknown): any {
  let seen = 0;
  while (node && typeof node === "object" && typeof (node as Json).$ref === "string") {
    const ref = (node as Json).$ref as string;
    if (!ref.startsWith("#/") || ++seen > 20) throw new Error(`unresolvable $ref ${ref}`);
    node = ref.slice(2).split("/").reduce((at: any, raw) => at?.[raw.replaceAll("~1", "/").replaceAll("~0", "~")], spec);
  }
  return node;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * The first way `value` fails `schema` (JSON Schema 2020-12, the keywords the spec uses and a few
 * more), or undefined when it passes. `at` is a JSON pointer-ish path for the message.
 */
function mismatch(schemaIn: unknown, value: unknown, at: string): string | undefined {
  if (schemaIn === true || schemaIn === undefined) return undefined;
  if (schemaIn === false) return `${at}: no value is allowed here`;
  const s = resolve(schemaIn) as Json;
  const show = (v: unknown) => JSON.stringify(v)?.slice(0, 80);
  if (s.type !== undefined) {
    const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
    if (s.nullable === true) types.push("null");
    const actual = typeOf(value);
    if (!types.includes(actual) && !(actual === "integer" && types.includes("number"))) return `${at}: ${show(value)} is not of type ${types.join("|")}`;
  }
  if ("const" in s && JSON.stringify(s.const) !== JSON.stringify(value)) return `${at}: ${show(value)} is not ${show(s.const)}`;
  if (s.enum && !s.enum.some((e: unknown) => JSON.stringify(e) === JSON.stringify(value))) return `${at}: ${show(value)} is not one of ${show(s.enum)}`;
  if (typeof value === "number") {
    if (s.minimum !== undefined && value < s.minimum) return `${at}: ${value} < minimum ${s.minimum}`;
    if (s.maximum !== undefined && value > s.maximum) return `${at}: ${value} > maximum ${s.maximum}`;
  }
  if (typeof value === "string") {
    if (s.minLength !== undefined && [...value].length < s.minLength) return `${at}: shorter than ${s.minLength}`;
    if (s.maxLength !== undefined && [...value].length > s.maxLength) return `${at}: longer than ${s.maxLength}`;
    if (s.pattern !== undefined && !new RegExp(s.pattern, "u").test(value)) return `${at}: ${show(value)} does not match ${s.pattern}`;
    if (s.format === "date-time" && !(DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)))) return `${at}: ${show(value)} is not a date-time`;
    if (s.format === "uri" && !URL.canParse(value)) return `${at}: ${show(value)} is not an absolute URI`;
  }
  for (const sub of s.allOf ?? []) {
    const m = mismatch(sub, value, at);
    if (m) return m;
  }
  if (s.anyOf) {
    const misses = s.anyOf.map((sub: unknown) => mismatch(sub, value, at));
    if (misses.every(Boolean)) return `${at}: matches none of anyOf (${misses.join("; ")})`;
  }
  if (s.oneOf) {
    const misses = s.oneOf.map((sub: unknown) => mismatch(sub, value, at));
    if (misses.filter((m: unknown) => !m).length !== 1) return `${at}: matches ${misses.filter((m: unknown) => !m).length} of oneOf, not 1`;
  }
  if (typeOf(value) === "array") {
    const items = value as unknown[];
    for (let i = 0; i < items.length; i++) {
      const m = mismatch(s.items, items[i], `${at}[${i}]`);
      if (m) return m;
    }
  }
  if (typeOf(value) === "object") {
    const object = value as Json;
    for (const name of s.required ?? []) if (!(name in object)) return `${at}: required property "${name}" is missing`;
    for (const [name, v] of Object.entries(object)) {
      const where = `${at}.${name}`;
      let covered = false;
      if (s.properties && name in s.properties) {
        covered = true;
        const m = mismatch(s.properties[name], v, where);
        if (m) return m;
      }
      for (const [pattern, sub] of Object.entries((s.patternProperties ?? {}) as Json)) {
        if (!new RegExp(pattern, "u").test(name)) continue;
        covered = true;
        const m = mismatch(sub, v, where);
        if (m) return m;
      }
      if (!covered && s.additionalProperties !== undefined) {
        const m = mismatch(s.additionalProperties, v, where);
        if (m) return `${m} (not a declared property)`;
      }
    }
  }
  return undefined;
}

/** Whether a response's media type is one of the declared media ranges (`video/*`, `*\/*`). */
function mediaMatches(range: string, type: string): boolean {
  const [r1, r2] = range.toLowerCase().split("/");
  const [t1, t2] = type.toLowerCase().split("/");
  return (r1 === "*" || r1 === t1) && (r2 === "*" || r2 === t2);
}

/** Every way an answer disagrees with the spec, first the status; empty when it conforms. */
function conformance(method: string, pathname: string, response: Response, body: string | undefined): string[] {
  const found = findOperation(method, pathname);
  if (!found) return [`${method} ${pathname}: no documented operation`];
  const { op } = found;
  const status = String(response.status);
  const declared = resolve(op.responses?.[status] ?? op.responses?.[`${status[0]}XX`] ?? op.responses?.default);
  if (!declared) return [`status ${status} is not declared (declared: ${Object.keys(op.responses ?? {}).join(", ")})`];
  const problems: string[] = [];
  for (const [name, rawHeader] of Object.entries((declared.headers ?? {}) as Json)) {
    const header = resolve(rawHeader);
    if (header.required && !response.headers.has(name)) problems.push(`required header ${name} is missing`);
  }
  const type = response.headers.get("content-type")?.split(";")[0]!.trim();
  const content = (declared.content ?? {}) as Json;
  const hasBody = body !== undefined && body.length > 0;
  if (hasBody && type && method !== "HEAD") {
    const ranges = Object.keys(content);
    if (ranges.length === 0) problems.push(`a ${type} body, but the spec declares none`);
    else if (!ranges.some((range) => mediaMatches(range, type))) problems.push(`content type ${type} is not declared (declared: ${ranges.join(", ")})`);
  }
  const schema = content["application/json"]?.schema;
  if (schema && type === "application/json" && method !== "HEAD") {
    let value: unknown;
    try {
      value = JSON.parse(body ?? "");
    } catch {
      problems.push(`body is not JSON: ${JSON.stringify((body ?? "").slice(0, 80))}`);
    }
    if (!problems.length) {
      const m = mismatch(schema, value, "body");
      if (m) problems.push(m);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The corpus: each case is one request; functions are evaluated when the case runs (after the
// cases before it, which make the ids and URLs later ones use).

interface Case {
  name: string;
  method: string;
  path: string | (() => string);
  headers?: Record<string, string> | (() => Record<string, string>);
  body?: BodyInit | (() => BodyInit | Promise<BodyInit>);
  /** The status this request should get (checked too: a corpus that misses its target proves little). */
  status: number | number[];
  /** An event stream: the body is not read, only the status and headers. */
  stream?: boolean;
  /** After the answer: keep what later cases need. */
  keep?: (response: Response, body: string) => void;
  /** known: a disagreement left in place; the problems the answer has today (see the case's comment). */
  known?: string[];
}

const V = DEMO_VIDEO_ID;
const tus = { "tus-resumable": "1.0.0" };
const signedUrl = () => `/api/stream/${state.signed}`;
const hlsFile = () => `/api/hls/${V}/${state.rendition}/${state.segment}`;
const tusUpload = () => new URL(state.tusLocation!, spool.url).pathname;

const cases: Case[] = [
  // Health, readiness, metrics.
  { name: "health", method: "GET", path: "/health", status: 200 },
  { name: "ready", method: "GET", path: "/ready", status: 200 },
  { name: "metrics with the key", method: "GET", path: "/metrics", headers: AUTH, status: 200 },
  { name: "metrics without the key", method: "GET", path: "/metrics", status: 401 },
  { name: "metrics with a wrong key", method: "GET", path: "/metrics", headers: { authorization: "Bearer nope" }, status: [401, 403] },

  // Sessions.
  { name: "sign in", method: "POST", path: "/api/session", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: TEST_API_KEY }), status: 204, keep: (response) => (state.cookie = response.headers.get("set-cookie")!.split(";")[0]!) },
  { name: "list with a session", method: "GET", path: "/api/videos", headers: () => ({ cookie: state.cookie! }), status: 200 },
  { name: "a change with a session, no Origin", method: "PATCH", path: `/api/videos/${V}`, headers: () => ({ cookie: state.cookie!, "content-type": "application/json" }), body: JSON.stringify({ title: "x" }), status: 403 },
  { name: "sign in with a wrong key", method: "POST", path: "/api/session", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: "wrong" }), status: [401, 403] },
  { name: "sign in without a key", method: "POST", path: "/api/session", headers: { "content-type": "application/json" }, body: "{}", status: 400 },
  { name: "sign in with malformed JSON", method: "POST", path: "/api/session", headers: { "content-type": "application/json" }, body: "{key:", status: 400 },
  { name: "sign in as a form", method: "POST", path: "/api/session", headers: { "content-type": "text/plain" }, body: "key", status: 415 },
  { name: "sign in with an oversized body", method: "POST", path: "/api/session", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: "k".repeat(256 * 1024) }), status: 413 },
  { name: "sign out", method: "DELETE", path: "/api/session", status: 204 },

  // The library.
  { name: "list", method: "GET", path: "/api/videos", headers: AUTH, status: 200 },
  { name: "list, a page of one ready video", method: "GET", path: "/api/videos?limit=1&status=ready", headers: AUTH, status: 200 },
  { name: "list without the key", method: "GET", path: "/api/videos", status: 401 },
  { name: "list with a wrong key", method: "GET", path: "/api/videos", headers: { authorization: "Bearer nope" }, status: [401, 403] },
  { name: "list, limit 0", method: "GET", path: "/api/videos?limit=0", headers: AUTH, status: 400 },
  { name: "list, limit not a number", method: "GET", path: "/api/videos?limit=ten", headers: AUTH, status: 400 },
  { name: "list, a bad cursor", method: "GET", path: "/api/videos?cursor=zzz", headers: AUTH, status: 400 },
  { name: "list, a bad status", method: "GET", path: "/api/videos?status=gone", headers: AUTH, status: 400 },
  { name: "list, If-None-Match", method: "GET", path: "/api/videos", headers: () => ({ ...AUTH, "if-none-match": "*" }), status: [200, 304] },
  { name: "get", method: "GET", path: `/api/videos/${V}`, headers: AUTH, status: 200 },
  { name: "get the signed video", method: "GET", path: () => `/api/videos/${state.signed}`, headers: AUTH, status: 200 },
  { name: "get, revalidated", method: "GET", path: `/api/videos/${V}`, headers: () => ({ ...AUTH, "if-none-match": state.videoEtag! }), status: 304 },
  { name: "get, a bad id", method: "GET", path: "/api/videos/a!b", headers: AUTH, status: 400 },
  { name: "get, an unknown id", method: "GET", path: "/api/videos/nosuchvideo", headers: AUTH, status: 404 },
  // Open for a public video (the player reads it); a signed one needs a token or the key.
  { name: "get without the key", method: "GET", path: `/api/videos/${V}`, status: 200 },
  { name: "get the signed video without the key", method: "GET", path: () => `/api/videos/${state.signed}`, status: 403 },
  { name: "get the signed video with a token", method: "GET", path: () => `/api/videos/${state.signed}?token=${state.token}`, status: 200 },
  { name: "get, a bad id, without the key", method: "GET", path: "/api/videos/a!b", status: 401 },
  { name: "head", method: "HEAD", path: `/api/videos/${V}`, headers: AUTH, status: 200 },
  { name: "head, an unknown id", method: "HEAD", path: "/api/videos/nosuchvideo", headers: AUTH, status: 404 },
  { name: "patch the title", method: "PATCH", path: `/api/videos/${V}`, headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: "Demo" }), status: 200 },
  { name: "patch, an empty object", method: "PATCH", path: `/api/videos/${V}`, headers: { ...AUTH, "content-type": "application/json" }, body: "{}", status: 400 },
  { name: "patch, an unknown field", method: "PATCH", path: `/api/videos/${V}`, headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ owner: "x" }), status: 400 },
  { name: "patch, malformed JSON", method: "PATCH", path: `/api/videos/${V}`, headers: { ...AUTH, "content-type": "application/json" }, body: "{\"title\":", status: 400 },
  { name: "patch, text/plain", method: "PATCH", path: `/api/videos/${V}`, headers: { ...AUTH, "content-type": "text/plain" }, body: "title", status: 415 },
  { name: "patch, oversized", method: "PATCH", path: `/api/videos/${V}`, headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: "t".repeat(2 * 1024 * 1024) }), status: 413 },
  { name: "patch, a stale If-Match", method: "PATCH", path: `/api/videos/${V}`, headers: { ...AUTH, "content-type": "application/json", "if-match": '"stale"' }, body: JSON.stringify({ title: "x" }), status: 412 },
  { name: "patch, an unknown id", method: "PATCH", path: "/api/videos/nosuchvideo", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: "x" }), status: 404 },
  { name: "patch without the key", method: "PATCH", path: `/api/videos/${V}`, headers: { "content-type": "application/json" }, body: JSON.stringify({ title: "x" }), status: 401 },
  { name: "token", method: "POST", path: () => `/api/videos/${state.signed}/tokens`, headers: AUTH, status: 201 },
  { name: "token with a lifetime", method: "POST", path: () => `/api/videos/${state.signed}/tokens`, headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ expiresIn: 60 }), status: 201 },
  { name: "token, a bad lifetime", method: "POST", path: () => `/api/videos/${state.signed}/tokens`, headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ expiresIn: 0 }), status: 400 },
  { name: "token, a lifetime not a number", method: "POST", path: () => `/api/videos/${state.signed}/tokens`, headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ expiresIn: "soon" }), status: 400 },
  { name: "token, malformed JSON", method: "POST", path: () => `/api/videos/${state.signed}/tokens`, headers: { ...AUTH, "content-type": "application/json" }, body: "{", status: 400 },
  { name: "token, oversized", method: "POST", path: () => `/api/videos/${state.signed}/tokens`, headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ pad: "p".repeat(2 * 1024 * 1024) }), status: 413 },
  { name: "token, a bad id", method: "POST", path: "/api/videos/a!b/tokens", headers: AUTH, status: 400 },
  { name: "token without the key", method: "POST", path: () => `/api/videos/${state.signed}/tokens`, status: 401 },
  { name: "token, text/plain", method: "POST", path: () => `/api/videos/${state.signed}/tokens`, headers: { ...AUTH, "content-type": "text/plain" }, body: "60", status: 415 },
  { name: "token, an unknown id", method: "POST", path: "/api/videos/nosuchvideo/tokens", headers: AUTH, status: 404 },
  { name: "retry a ready video's import", method: "POST", path: `/api/videos/${V}/retry`, headers: AUTH, status: 409 },
  { name: "retry, an unknown id", method: "POST", path: "/api/videos/nosuchvideo/retry", headers: AUTH, status: 404 },
  { name: "retry a built ladder", method: "POST", path: `/api/videos/${V}/hls/retry`, headers: AUTH, status: 409 },
  { name: "retry a ladder, a bad id", method: "POST", path: "/api/videos/a!b/hls/retry", headers: AUTH, status: [400, 404] },
  { name: "a video's events", method: "GET", path: `/api/videos/${V}/events`, headers: AUTH, status: 200, stream: true },
  { name: "a video's events, an unknown id", method: "GET", path: "/api/videos/nosuchvideo/events", headers: AUTH, status: 404 },
  { name: "a video's events without the key", method: "GET", path: `/api/videos/${V}/events`, status: 401 },
  { name: "the library's events", method: "GET", path: "/api/videos/events", headers: AUTH, status: 200, stream: true },
  { name: "the library's events without the key", method: "GET", path: "/api/videos/events", status: 401 },

  // Uploads: multipart, import, direct, tus.
  { name: "upload", method: "POST", path: "/api/videos", headers: AUTH, body: async () => form(await Bun.file(await makeVideo({ seconds: 1, width: 160, height: 120 })).arrayBuffer()), status: 201, keep: (_, body) => (state.uploaded = JSON.parse(body).id) },
  { name: "upload, not a video", method: "POST", path: "/api/videos", headers: AUTH, body: () => form(new TextEncoder().encode("hello, not a video").buffer as ArrayBuffer), status: [415, 422] },
  { name: "upload, no file", method: "POST", path: "/api/videos", headers: AUTH, body: () => { const f = new FormData(); f.append("title", "x"); return f; }, status: 400 },
  { name: "upload, a bad playback", method: "POST", path: "/api/videos", headers: AUTH, body: async () => form(await Bun.file(await makeVideo({ seconds: 1, width: 160, height: 120 })).arrayBuffer(), { playback: "secret" }), status: 400 },
  { name: "upload, text/plain", method: "POST", path: "/api/videos", headers: { ...AUTH, "content-type": "text/plain" }, body: "video", status: 415 },
  { name: "upload without the key", method: "POST", path: "/api/videos", body: () => form(new ArrayBuffer(10)), status: 401 },
  { name: "import, a private address", method: "POST", path: "/api/videos", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ url: "http://127.0.0.1:9/x.mp4" }), status: [201, 400, 422] },
  { name: "import, not a URL", method: "POST", path: "/api/videos", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ url: "nope" }), status: 400 },
  { name: "import, an unknown field", method: "POST", path: "/api/videos", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ url: "https://example.com/a.mp4", owner: 1 }), status: 400 },
  { name: "import, oversized", method: "POST", path: "/api/videos", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ url: "https://example.com/a.mp4", title: "t".repeat(2 * 1024 * 1024) }), status: 413 },
  { name: "import, malformed JSON", method: "POST", path: "/api/videos", headers: { ...AUTH, "content-type": "application/json" }, body: "{\"url\"", status: 400 },
  { name: "direct upload URL", method: "POST", path: "/api/uploads/direct", headers: AUTH, status: 201, keep: (_, body) => (state.direct = JSON.parse(body).uploadUrl) },
  { name: "direct upload URL, bad settings", method: "POST", path: "/api/uploads/direct", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ playback: "all" }), status: 400 },
  { name: "direct upload URL, malformed JSON", method: "POST", path: "/api/uploads/direct", headers: { ...AUTH, "content-type": "application/json" }, body: "[", status: 400 },
  { name: "direct upload URL, text/plain", method: "POST", path: "/api/uploads/direct", headers: { ...AUTH, "content-type": "text/plain" }, body: "x", status: 415 },
  { name: "direct upload URL without the key", method: "POST", path: "/api/uploads/direct", status: 401 },
  { name: "direct upload preflight", method: "OPTIONS", path: () => state.direct!, headers: { origin: "https://example.com", "access-control-request-method": "POST" }, status: 204 },
  { name: "direct upload, no Tus-Resumable", method: "POST", path: () => state.direct!, headers: { "upload-length": "100" }, status: 412 },
  { name: "direct upload, no length", method: "POST", path: () => state.direct!, headers: tus, status: 400 },
  { name: "direct upload", method: "POST", path: () => state.direct!, headers: { ...tus, "upload-length": "100" }, status: 201 },
  // A repeated creation (its answer lost) hears what the first made.
  { name: "direct upload, the URL again", method: "POST", path: () => state.direct!, headers: { ...tus, "upload-length": "100" }, status: 201 },
  { name: "direct upload, an unknown secret", method: "POST", path: "/api/uploads/direct/nosuchsecret", headers: { ...tus, "upload-length": "100" }, status: [403, 404, 410] },
  { name: "tus discovery", method: "OPTIONS", path: "/api/uploads", status: 204 },
  { name: "tus create", method: "POST", path: "/api/uploads", headers: { ...AUTH, ...tus, "upload-length": "1000", "upload-metadata": `filename ${btoa("a.mp4")}` }, status: 201, keep: (response) => (state.tusLocation = response.headers.get("location")!) },
  { name: "tus create, no Tus-Resumable", method: "POST", path: "/api/uploads", headers: { ...AUTH, "upload-length": "1000" }, status: 412 },
  { name: "tus create, a bad length", method: "POST", path: "/api/uploads", headers: { ...AUTH, ...tus, "upload-length": "-1" }, status: 400 },
  { name: "tus create, too large", method: "POST", path: "/api/uploads", headers: { ...AUTH, ...tus, "upload-length": String(1024 ** 4) }, status: 413 },
  { name: "tus create, bad metadata", method: "POST", path: "/api/uploads", headers: { ...AUTH, ...tus, "upload-length": "10", "upload-metadata": "playback !!!" }, status: 400 },
  { name: "tus create without the key", method: "POST", path: "/api/uploads", headers: { ...tus, "upload-length": "1000" }, status: 401 },
  { name: "tus preflight", method: "OPTIONS", path: tusUpload, headers: { origin: "https://example.com", "access-control-request-method": "PATCH" }, status: 204 },
  { name: "tus offset", method: "HEAD", path: tusUpload, headers: tus, status: 200 },
  { name: "tus offset, no Tus-Resumable", method: "HEAD", path: tusUpload, status: 412 },
  { name: "tus offset, an unknown upload", method: "HEAD", path: "/api/uploads/nosuchvideo.secret", headers: tus, status: 404 },
  { name: "tus append", method: "PATCH", path: tusUpload, headers: { ...tus, "content-type": "application/offset+octet-stream", "upload-offset": "0" }, body: new Uint8Array(100), status: 204 },
  { name: "tus append, a wrong offset", method: "PATCH", path: tusUpload, headers: { ...tus, "content-type": "application/offset+octet-stream", "upload-offset": "0" }, body: new Uint8Array(10), status: 409 },
  { name: "tus append, a bad offset", method: "PATCH", path: tusUpload, headers: { ...tus, "content-type": "application/offset+octet-stream", "upload-offset": "x" }, body: new Uint8Array(10), status: 400 },
  { name: "tus append, the wrong content type", method: "PATCH", path: tusUpload, headers: { ...tus, "content-type": "application/octet-stream", "upload-offset": "100" }, body: new Uint8Array(10), status: 415 },
  { name: "tus append, past the length", method: "PATCH", path: tusUpload, headers: { ...tus, "content-type": "application/offset+octet-stream", "upload-offset": "100" }, body: new Uint8Array(2000), status: 413 },
  { name: "tus append, an unknown upload", method: "PATCH", path: "/api/uploads/nosuchvideo.secret", headers: { ...tus, "content-type": "application/offset+octet-stream", "upload-offset": "0" }, body: new Uint8Array(10), status: 404 },
  { name: "tus terminate, no Tus-Resumable", method: "DELETE", path: tusUpload, status: 412 },
  { name: "tus terminate", method: "DELETE", path: tusUpload, headers: tus, status: 204 },
  { name: "tus offset, terminated", method: "HEAD", path: tusUpload, headers: tus, status: [404, 410] },
  { name: "tus terminate, an unknown upload", method: "DELETE", path: "/api/uploads/nosuchvideo.secret", headers: tus, status: 404 },

  // The stream.
  { name: "stream", method: "GET", path: `/api/stream/${V}`, status: 200 },
  { name: "stream, HEAD", method: "HEAD", path: `/api/stream/${V}`, status: 200 },
  { name: "stream, a range", method: "GET", path: `/api/stream/${V}`, headers: { range: "bytes=0-99" }, status: 206 },
  { name: "stream, two ranges", method: "GET", path: `/api/stream/${V}`, headers: { range: "bytes=0-9,200000-200009" }, status: 206 },
  { name: "stream, two ranges, HEAD", method: "HEAD", path: `/api/stream/${V}`, headers: { range: "bytes=0-9,200000-200009" }, status: 206 },
  { name: "stream, a range, HEAD", method: "HEAD", path: `/api/stream/${V}`, headers: { range: "bytes=0-99" }, status: 206 },
  { name: "stream, an unsatisfiable range", method: "GET", path: `/api/stream/${V}`, headers: { range: "bytes=999999999-" }, status: 416 },
  { name: "stream, an unsatisfiable range, HEAD", method: "HEAD", path: `/api/stream/${V}`, headers: { range: "bytes=999999999-" }, status: 416 },
  { name: "stream, If-None-Match", method: "GET", path: `/api/stream/${V}`, headers: () => ({ "if-none-match": state.etag! }), status: 304 },
  { name: "stream, a failed If-Match", method: "GET", path: `/api/stream/${V}`, headers: { "if-match": '"nope"' }, status: 412 },
  { name: "stream, a stale If-Range", method: "GET", path: `/api/stream/${V}`, headers: { range: "bytes=0-9", "if-range": '"nope"' }, status: 200 },
  { name: "stream, a download", method: "GET", path: `/api/stream/${V}?download=1`, headers: { range: "bytes=0-9" }, status: 206 },
  { name: "stream, a clip", method: "GET", path: `/api/stream/${V}?start=1&end=3`, headers: { range: "bytes=0-9" }, status: 206 },
  { name: "stream, a whole clip", method: "GET", path: `/api/stream/${V}?start=1&end=3`, status: 200 },
  { name: "stream, a clip, two ranges", method: "GET", path: `/api/stream/${V}?start=1&end=3`, headers: { range: "bytes=0-9,50000-50009" }, status: 206 },
  { name: "stream, a clip, a stale If-Range", method: "GET", path: `/api/stream/${V}?start=1&end=3`, headers: { range: "bytes=0-9", "if-range": '"nope"' }, status: 200 },
  { name: "stream, a clip past the end", method: "GET", path: `/api/stream/${V}?start=999`, status: 400 },
  { name: "stream, a clip, end before start", method: "GET", path: `/api/stream/${V}?start=3&end=1`, status: 400 },
  { name: "stream, a bad clip", method: "GET", path: `/api/stream/${V}?start=abc`, status: 400 },
  // Any other value is no download (the spec's enum says what a client should send).
  { name: "stream, another download value", method: "GET", path: `/api/stream/${V}?download=yes`, headers: { range: "bytes=0-9" }, status: 206 },
  { name: "stream, a bad id", method: "GET", path: "/api/stream/a!b", status: [400, 404] },
  { name: "stream, an unknown id", method: "GET", path: "/api/stream/nosuchvideo", status: 404 },
  { name: "stream, an unknown id, HEAD", method: "HEAD", path: "/api/stream/nosuchvideo", status: 404 },
  { name: "stream, signed, no token", method: "GET", path: signedUrl, status: 403 },
  { name: "stream, signed, no token, HEAD", method: "HEAD", path: signedUrl, status: 403 },
  { name: "stream, signed, a bad token", method: "GET", path: () => `${signedUrl()}?token=abc`, status: 403 },
  { name: "stream, signed, a token", method: "GET", path: () => `${signedUrl()}?token=${state.token}`, headers: { range: "bytes=0-9" }, status: 206 },
  { name: "stream, signed, the key", method: "GET", path: signedUrl, headers: { ...AUTH, range: "bytes=0-9" }, status: 206 },
  { name: "stream, signed, a wrong key", method: "GET", path: signedUrl, headers: { authorization: "Bearer nope" }, status: [401, 403] },

  // Thumbnails.
  { name: "thumbnail", method: "GET", path: `/api/videos/${V}/thumbnail.jpg`, status: 200 },
  { name: "thumbnail, HEAD", method: "HEAD", path: `/api/videos/${V}/thumbnail.jpg`, status: 200 },
  { name: "thumbnail at 1 s, 160 wide", method: "GET", path: `/api/videos/${V}/thumbnail.jpg?t=1&width=160`, status: 200 },
  { name: "thumbnail, a stale If-Range", method: "GET", path: `/api/videos/${V}/thumbnail.jpg`, headers: { range: "bytes=0-9", "if-range": '"nope"' }, status: 200 },
  { name: "thumbnail, two ranges", method: "GET", path: `/api/videos/${V}/thumbnail.jpg`, headers: { range: "bytes=0-9,1000-1009" }, status: 206 },
  { name: "thumbnail, a range", method: "GET", path: `/api/videos/${V}/thumbnail.jpg`, headers: { range: "bytes=0-9" }, status: 206 },
  { name: "thumbnail, an unsatisfiable range", method: "GET", path: `/api/videos/${V}/thumbnail.jpg`, headers: { range: "bytes=99999999-" }, status: 416 },
  { name: "thumbnail, If-None-Match *", method: "GET", path: `/api/videos/${V}/thumbnail.jpg`, headers: { "if-none-match": "*" }, status: 304 },
  { name: "thumbnail, a failed If-Match", method: "GET", path: `/api/videos/${V}/thumbnail.jpg`, headers: { "if-match": '"nope"' }, status: 412 },
  { name: "thumbnail, a bad t", method: "GET", path: `/api/videos/${V}/thumbnail.jpg?t=-1`, status: 400 },
  { name: "thumbnail, t not a number", method: "GET", path: `/api/videos/${V}/thumbnail.jpg?t=abc`, status: 400 },
  { name: "thumbnail, a bad width", method: "GET", path: `/api/videos/${V}/thumbnail.jpg?width=5`, status: 400 },
  { name: "thumbnail, t past the end", method: "GET", path: `/api/videos/${V}/thumbnail.jpg?t=9999`, status: [400, 422] },
  { name: "thumbnail, a bad id", method: "GET", path: "/api/videos/a!b/thumbnail.jpg", headers: AUTH, status: 400 },
  { name: "thumbnail, a bad id, without the key", method: "GET", path: "/api/videos/a!b/thumbnail.jpg", status: 401 },
  { name: "thumbnail, an unknown id", method: "GET", path: "/api/videos/nosuchvideo/thumbnail.jpg", status: 404 },
  { name: "thumbnail, signed, no token", method: "GET", path: () => `/api/videos/${state.signed}/thumbnail.jpg`, status: 403 },
  { name: "thumbnail, signed, a token", method: "GET", path: () => `/api/videos/${state.signed}/thumbnail.jpg?token=${state.token}`, status: 200 },

  // HLS.
  { name: "master playlist", method: "GET", path: `/api/hls/${V}/master.m3u8`, status: 200 },
  { name: "master playlist, HEAD", method: "HEAD", path: `/api/hls/${V}/master.m3u8`, status: 200 },
  { name: "master playlist, a range", method: "GET", path: `/api/hls/${V}/master.m3u8`, headers: { range: "bytes=0-9" }, status: 206 },
  { name: "storyboard sprite, two ranges", method: "GET", path: `/api/hls/${V}/storyboard_1.jpg`, headers: { range: "bytes=0-0,-1" }, status: 206 },
  { name: "master playlist, an unsatisfiable range", method: "GET", path: `/api/hls/${V}/master.m3u8`, headers: { range: "bytes=999999-" }, status: 416 },
  { name: "master playlist, If-None-Match *", method: "GET", path: `/api/hls/${V}/master.m3u8`, headers: { "if-none-match": "*" }, status: 304 },
  { name: "master playlist, a failed If-Match", method: "GET", path: `/api/hls/${V}/master.m3u8`, headers: { "if-match": '"nope"' }, status: 412 },
  { name: "storyboard", method: "GET", path: `/api/hls/${V}/storyboard.vtt`, status: 200 },
  { name: "storyboard sprite", method: "GET", path: `/api/hls/${V}/storyboard_1.jpg`, status: 200 },
  { name: "an unknown HLS file", method: "GET", path: `/api/hls/${V}/nosuch.m3u8`, status: 404 },
  { name: "HLS, a bad id", method: "GET", path: "/api/hls/a!b/master.m3u8", status: 404 },
  { name: "HLS of an unknown video", method: "GET", path: "/api/hls/nosuchvideo/master.m3u8", status: 404 },
  { name: "HLS of a signed video, no token", method: "GET", path: () => `/api/hls/${state.signed}/master.m3u8`, status: [403, 404] },
  { name: "media playlist", method: "GET", path: () => `/api/hls/${V}/${state.rendition}/index.m3u8`, status: 200 },
  { name: "segment", method: "GET", path: hlsFile, status: 200 },
  { name: "segment, HEAD", method: "HEAD", path: hlsFile, status: 200 },
  { name: "segment, a range", method: "GET", path: hlsFile, headers: { range: "bytes=0-9" }, status: 206 },
  { name: "segment, a stale If-Range", method: "GET", path: hlsFile, headers: { range: "bytes=0-9", "if-range": '"nope"' }, status: 200 },
  { name: "segment, two ranges", method: "GET", path: hlsFile, headers: { range: "bytes=0-9,1000-1009" }, status: 206 },
  { name: "segment, If-None-Match *", method: "GET", path: hlsFile, headers: { "if-none-match": "*" }, status: 304 },
  { name: "segment, an unsatisfiable range", method: "GET", path: hlsFile, headers: { range: "bytes=99999999-" }, status: 416 },
  { name: "an unknown rendition file", method: "GET", path: () => `/api/hls/${V}/${state.rendition}/nosuch.m4s`, status: 404 },
  { name: "an unknown rendition", method: "GET", path: `/api/hls/${V}/9999p/index.m3u8`, status: 404 },

  // The static folder.
  { name: "static", method: "GET", path: "/static/hello.txt", status: 200 },
  { name: "static, HEAD", method: "HEAD", path: "/static/hello.txt", status: 200 },
  { name: "static, a range", method: "GET", path: "/static/hello.txt", headers: { range: "bytes=0-3" }, status: 206 },
  { name: "static, a stale If-Range", method: "GET", path: "/static/hello.txt", headers: { range: "bytes=0-3", "if-range": '"nope"' }, status: 200 },
  { name: "static, two ranges", method: "GET", path: "/static/hello.txt", headers: { range: "bytes=0-1,10-12" }, status: 206 },
  { name: "static, two ranges, HEAD", method: "HEAD", path: "/static/hello.txt", headers: { range: "bytes=0-1,10-12" }, status: 206 },
  { name: "static, an unsatisfiable range", method: "GET", path: "/static/hello.txt", headers: { range: "bytes=999-" }, status: 416 },
  { name: "static, If-None-Match *", method: "GET", path: "/static/hello.txt", headers: { "if-none-match": "*" }, status: 304 },
  { name: "static, a failed If-Match", method: "GET", path: "/static/hello.txt", headers: { "if-match": '"nope"' }, status: 412 },
  { name: "static, missing", method: "GET", path: "/static/nosuch.txt", status: 404 },
  { name: "static, missing, HEAD", method: "HEAD", path: "/static/nosuch.txt", status: 404 },

  // Deleting, last: the uploaded video.
  { name: "delete, a stale If-Match", method: "DELETE", path: () => `/api/videos/${state.uploaded}`, headers: { ...AUTH, "if-match": '"stale"' }, status: 412 },
  { name: "delete without the key", method: "DELETE", path: () => `/api/videos/${state.uploaded}`, status: 401 },
  { name: "delete, a bad id", method: "DELETE", path: "/api/videos/a!b", headers: AUTH, status: 400 },
  { name: "delete", method: "DELETE", path: () => `/api/videos/${state.uploaded}`, headers: AUTH, status: 204 },
  { name: "delete, again", method: "DELETE", path: () => `/api/videos/${state.uploaded}`, headers: AUTH, status: 404 },
];

function form(bytes: ArrayBuffer, fields: Record<string, string> = {}): FormData {
  const f = new FormData();
  for (const [name, value] of Object.entries(fields)) f.append(name, value);
  f.append("file", new Blob([bytes], { type: "video/mp4" }), "clip.mp4");
  return f;
}

/** Operations the corpus does not reach, and why. */
const UNREACHED: Record<string, string> = {};

// ---------------------------------------------------------------------------------------------

describe("the server answers as its OpenAPI description says", () => {
  for (const c of cases) {
    test(`${c.method} ${typeof c.path === "string" ? c.path : "…"}: ${c.name}`, async () => {
      const path = typeof c.path === "function" ? c.path() : c.path;
      const headers = typeof c.headers === "function" ? c.headers() : c.headers;
      const body = typeof c.body === "function" ? await c.body() : c.body;
      const response = await fetch(`${spool.url}${path}`, { method: c.method, headers, body, redirect: "manual" });
      let text: string | undefined;
      if (c.stream) await response.body?.cancel();
      else text = await response.text();
      const pathname = new URL(path, spool.url).pathname;
      const op = findOperation(c.method, pathname);
      const problems = conformance(c.method, pathname, response, text);
      const where = `${op?.op.operationId ?? "?"} (${op?.key ?? `${c.method} ${pathname}`}) ${response.status}`;
      if (c.known) expect({ where, problems }).toEqual({ where, problems: c.known });
      else if (problems.length) throw new Error(`${where} [${c.name}]: ${problems[0]}${problems.length > 1 ? ` (+${problems.length - 1} more: ${problems.slice(1).join("; ")})` : ""}`);
      const wanted = Array.isArray(c.status) ? c.status : [c.status];
      if (!wanted.includes(response.status)) throw new Error(`${where} [${c.name}]: the case wants ${wanted.join(" or ")}, got ${response.status}: ${text?.slice(0, 200)}`);
      c.keep?.(response, text ?? "");
      reached.add(op?.op.operationId);
    });
  }

  test("the corpus reaches every documented operation", () => {
    const missing: string[] = [];
    for (const [path, item] of Object.entries(spec.paths as Json)) {
      for (const method of METHODS) {
        const op = (item as Json)[method];
        if (op && !reached.has(op.operationId) && !(op.operationId in UNREACHED)) missing.push(`${op.operationId} (${method.toUpperCase()} ${path})`);
      }
    }
    expect(missing).toEqual([]);
  });

  test("the validator finds what it should", () => {
    const schema = { type: "object", required: ["a"], additionalProperties: false, properties: { a: { type: ["integer", "null"], minimum: 1 }, b: { type: "string", format: "date-time" }, c: { anyOf: [{ const: "x" }, { type: "array", items: { enum: [1, 2] } }] } } };
    expect(mismatch(schema, { a: 1 }, "body")).toBeUndefined();
    expect(mismatch(schema, { a: null, b: "2026-11-22T11:00:00.000Z", c: [1, 2] }, "body")).toBeUndefined();
    expect(mismatch(schema, {}, "body")).toBe('body: required property "a" is missing');
    expect(mismatch(schema, { a: 0 }, "body")).toBe("body.a: 0 < minimum 1");
    expect(mismatch(schema, { a: 1.5 }, "body")).toBe("body.a: 1.5 is not of type integer|null");
    expect(mismatch(schema, { a: 1, b: "yesterday" }, "body")).toBe('body.b: "yesterday" is not a date-time');
    expect(mismatch(schema, { a: 1, c: [3] }, "body")).toStartWith("body.c: matches none of anyOf");
    expect(mismatch(schema, { a: 1, d: 1 }, "body")).toBe("body.d: no value is allowed here (not a declared property)");
  });
});

const reached = new Set<string | undefined>();
