/**
 * The OpenAPI description at /swagger/json and Swagger UI at /swagger: the spec is valid
 * OpenAPI 3.1 (structurally checked below), covers every registered route, documents the
 * error shape and the stream route's 206/304/412/416; the UI loads in headless Chromium with
 * every request going to Spool itself.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chromium } from "playwright-core";
import { createApp } from "../../src/web.ts";
import { ASSETS_PATH, UNDOCUMENTED_ROUTES } from "../../src/modules/openapi/plugin.ts";
import { replacedRoutes } from "../../src/modules/openapi/paths.ts";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";

type Json = Record<string, any>;

let spool: TestSpool;
let spec: Json;
beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"] });
  const response = await fetch(`${spool.url}/swagger/json`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toStartWith("application/json");
  spec = (await response.json()) as Json;
});
afterAll(() => spool?.stop());

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const JSON_TYPES = new Set(["string", "number", "integer", "boolean", "array", "object", "null"]);

function operations(doc: Json): { path: string; method: string; op: Json; pathItem: Json }[] {
  const out = [];
  for (const [path, pathItem] of Object.entries(doc.paths as Json)) {
    for (const method of METHODS) if (pathItem[method]) out.push({ path, method, op: pathItem[method] as Json, pathItem: pathItem as Json });
  }
  return out;
}

function resolvePointer(doc: Json, ref: string): unknown {
  if (!ref.startsWith("#/")) return undefined;
  let node: any = doc;
  for (const raw of ref.slice(2).split("/")) {
    node = node?.[raw.replaceAll("~1", "/").replaceAll("~0", "~")];
  }
  return node;
}

/** Whether a JSON value is an instance of a JSON Schema type. */
function isOfType(value: unknown, type: string): boolean {
  if (type === "integer") return Number.isInteger(value);
  if (type === "null") return value === null;
  if (type === "array") return Array.isArray(value);
  if (type === "object") return typeof value === "object" && value !== null && !Array.isArray(value);
  return typeof value === type;
}

/** A JSON Schema (2020-12 dialect, as OpenAPI 3.1 uses it): the structural rules that matter. */
function checkSchema(doc: Json, schema: unknown, where: string, problems: string[]): void {
  if (typeof schema === "boolean") return;
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) {
    problems.push(`${where}: schema must be an object`);
    return;
  }
  const s = schema as Json;
  if (typeof s.$ref === "string" && resolvePointer(doc, s.$ref) === undefined) problems.push(`${where}: unresolved $ref ${s.$ref}`);
  if (s.$id !== undefined && String(s.$id).includes("#")) problems.push(`${where}: $id must not contain a fragment`);
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    for (const type of types) if (!JSON_TYPES.has(type)) problems.push(`${where}: invalid type ${JSON.stringify(type)}`);
  }
  if (s.required !== undefined && (!Array.isArray(s.required) || s.required.some((r: unknown) => typeof r !== "string"))) problems.push(`${where}: required must be an array of names`);
  if (s.enum !== undefined && !Array.isArray(s.enum)) problems.push(`${where}: enum must be an array`);
  if (s.examples !== undefined && !Array.isArray(s.examples)) problems.push(`${where}: examples must be an array`);
  // A default is an instance of its schema's type (openapi-spec-validator refuses
  // {"type": "string", "default": 0}, which Elysia's t.Integer and t.Numeric once produced).
  if (s.default !== undefined && s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((type: string) => isOfType(s.default, type))) problems.push(`${where}: default ${JSON.stringify(s.default)} is not of type ${JSON.stringify(s.type)}`);
  }
  if (s.properties !== undefined) {
    if (typeof s.properties !== "object") problems.push(`${where}: properties must be an object`);
    else for (const [name, child] of Object.entries(s.properties)) checkSchema(doc, child, `${where}.properties.${name}`, problems);
  }
  for (const key of ["items", "additionalProperties", "not", "if", "then", "else", "contains"]) {
    if (s[key] !== undefined && typeof s[key] !== "boolean") checkSchema(doc, s[key], `${where}.${key}`, problems);
  }
  for (const key of ["allOf", "anyOf", "oneOf", "prefixItems"]) {
    if (s[key] === undefined) continue;
    if (!Array.isArray(s[key]) || s[key].length === 0) problems.push(`${where}: ${key} must be a non-empty array`);
    else s[key].forEach((child: unknown, i: number) => checkSchema(doc, child, `${where}.${key}[${i}]`, problems));
  }
}

function checkContent(doc: Json, content: unknown, where: string, problems: string[]): void {
  if (!content || typeof content !== "object") return void problems.push(`${where}: content must be an object`);
  const entries = Object.entries(content);
  if (entries.length === 0) problems.push(`${where}: content must name at least one media type`);
  for (const [type, media] of entries) {
    if (!/^[\w.+*-]+\/[\w.+*-]+$/.test(type)) problems.push(`${where}: "${type}" is not a media type`);
    if (!media || typeof media !== "object") problems.push(`${where}.${type}: must be a Media Type Object`);
    else if ((media as Json).schema !== undefined) checkSchema(doc, (media as Json).schema, `${where}.${type}.schema`, problems);
  }
}

/** Structural validation of an OpenAPI 3.1 document: the rules a generator gets wrong. */
function validateOpenApi31(doc: Json): string[] {
  const problems: string[] = [];
  if (!/^3\.1\.\d+$/.test(String(doc.openapi))) problems.push(`openapi: "${doc.openapi}" is not 3.1.x`);
  if (typeof doc.info?.title !== "string" || typeof doc.info?.version !== "string") problems.push("info: title and version are required strings");
  if (!doc.paths || typeof doc.paths !== "object") problems.push("paths: required object");
  const tagNames = new Set((doc.tags ?? []).map((t: Json) => t.name));
  const operationIds = new Map<string, string>();
  for (const { path, method, op, pathItem } of operations(doc)) {
    const where = `${method.toUpperCase()} ${path}`;
    if (!path.startsWith("/")) problems.push(`${path}: paths must start with /`);
    // Parameters: valid `in`, unique (name, in), path templates and path parameters agree.
    const params = [...(pathItem.parameters ?? []), ...(op.parameters ?? [])] as Json[];
    const seen = new Set<string>();
    for (const p of params) {
      if (typeof p.name !== "string" || !["query", "header", "path", "cookie"].includes(p.in)) problems.push(`${where}: parameter ${JSON.stringify(p)} is malformed`);
      if (seen.has(`${p.in}:${p.name}`)) problems.push(`${where}: duplicate parameter ${p.in} ${p.name}`);
      seen.add(`${p.in}:${p.name}`);
      if (p.in === "path" && p.required !== true) problems.push(`${where}: path parameter ${p.name} must be required`);
      if ((p.schema === undefined) === (p.content === undefined)) problems.push(`${where}: parameter ${p.name} needs exactly one of schema or content`);
      if (p.schema !== undefined) checkSchema(doc, p.schema, `${where} parameter ${p.name}`, problems);
    }
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!).sort();
    const declared = params.filter((p) => p.in === "path").map((p) => p.name as string).sort();
    if (JSON.stringify(templated) !== JSON.stringify(declared)) problems.push(`${where}: path template {${templated}} but path parameters [${declared}]`);
    // Operation ids are unique.
    if (typeof op.operationId === "string") {
      if (operationIds.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} also used by ${operationIds.get(op.operationId)}`);
      operationIds.set(op.operationId, where);
    }
    for (const tag of op.tags ?? []) if (!tagNames.has(tag)) problems.push(`${where}: tag "${tag}" is not declared`);
    if (op.requestBody !== undefined) checkContent(doc, op.requestBody.content, `${where} requestBody`, problems);
    // Responses (optional in 3.1, but when present): status codes, a description each,
    // well-formed content and headers.
    if (op.responses !== undefined && (typeof op.responses !== "object" || Object.keys(op.responses).length === 0)) problems.push(`${where}: empty responses`);
    const responses = Object.entries((op.responses ?? {}) as Json);
    for (const [status, response] of responses) {
      const at = `${where} ${status}`;
      if (!/^(default|[1-5](\d\d|XX))$/.test(status)) problems.push(`${at}: not a status code`);
      if (typeof response.description !== "string") problems.push(`${at}: description is required`);
      if (response.content !== undefined) checkContent(doc, response.content, `${at} content`, problems);
      for (const [name, h] of Object.entries((response.headers ?? {}) as Json)) {
        if ((h.schema === undefined) === (h.content === undefined)) problems.push(`${at} header ${name}: needs exactly one of schema or content`);
        if (h.schema !== undefined) checkSchema(doc, h.schema, `${at} header ${name}`, problems);
      }
    }
  }
  for (const [name, schema] of Object.entries((doc.components?.schemas ?? {}) as Json)) checkSchema(doc, schema, `components.schemas.${name}`, problems);
  return problems;
}

describe("the OpenAPI description", () => {
  test("is valid OpenAPI 3.1", () => {
    expect(validateOpenApi31(spec)).toEqual([]);
    expect(spec.info).toMatchObject({ title: "Spool", version: expect.any(String) });
  });

  test("the validator catches what the plugin gets wrong by default", () => {
    const broken = {
      openapi: "3.1.2",
      info: { title: "x", version: "1" },
      paths: {
        "/a/{id}": { delete: { operationId: "x", responses: { 204: { description: "d", content: { type: "void" } } } } },
        "/b": { get: { operationId: "x", responses: {}, parameters: [{ name: "q", in: "body", schema: { type: "text" } }] } },
        // What Elysia's t.Integer documents by itself for a query parameter.
        "/c": { get: { operationId: "c", responses: { 200: { description: "d" } }, parameters: [{ name: "n", in: "query", schema: { anyOf: [{ format: "integer", default: 0, type: "string" }, { type: "integer", default: 1.5 }] } }] } },
      },
    };
    expect(validateOpenApi31(broken)).toEqual([
      'DELETE /a/{id}: path template {id} but path parameters []',
      'DELETE /a/{id} 204 content: "type" is not a media type',
      "DELETE /a/{id} 204 content.type: must be a Media Type Object",
      'GET /b: parameter {"name":"q","in":"body","schema":{"type":"text"}} is malformed',
      'GET /b parameter q: invalid type "text"',
      "GET /b: operationId x also used by DELETE /a/{id}",
      "GET /b: empty responses",
      'GET /c parameter n.anyOf[0]: default 0 is not of type "string"',
      'GET /c parameter n.anyOf[1]: default 1.5 is not of type "integer"',
    ]);
  });

  test("every registered route appears in it", () => {
    const app = createApp(spool.ctx);
    const missing: string[] = [];
    const hidden: string[] = [];
    for (const route of app.routes) {
      const method = route.method.toLowerCase();
      if ((route.hooks as Json)?.detail?.hide) {
        hidden.push(route.path);
        continue;
      }
      const path = replacedRoutes[route.path] ?? route.path.replace(/:([^/]+)/g, "{$1}");
      if (!spec.paths[path]?.[method]) missing.push(`${route.method} ${route.path}`);
    }
    expect(missing).toEqual([]);
    // Only documentation plumbing (and pages other modules hide on purpose) stays out.
    for (const path of UNDOCUMENTED_ROUTES) expect(hidden).toContain(path);
    expect(app.routes.length).toBeGreaterThan(15);
  });

  test("every operation describes its responses", () => {
    const undescribed = operations(spec)
      .filter(({ op }) => !op.responses || Object.keys(op.responses).length === 0)
      .map(({ method, path }) => `${method.toUpperCase()} ${path}`);
    expect(undescribed).toEqual([]);
  });

  test("the library, upload and thumbnail operations are all there, with ids", () => {
    const ids = operations(spec).map((o) => o.op.operationId);
    expect(ids).toEqual(
      expect.arrayContaining([
        "uploadVideo", "listVideos", "getVideo", "updateVideo", "deleteVideo",
        "discoverUploads", "createUpload", "getUploadOffset", "appendUpload", "terminateUpload",
        "getThumbnail", "getStream", "headStream",
      ]),
    );
  });

  test("the stream route: 200, 206 (with multipart/byteranges), 304, 412, 416 and the error shape", () => {
    const get = spec.paths["/api/stream/{id}"].get;
    // 403: a `signed` video without a valid playback token.
    // 302: S3_DELIVERY=redirect; 422: a clip of an MP4 that cannot be cut; 503: storage or database away.
    // 401/429: a signed video asked with a wrong key instead of a token.
    expect(Object.keys(get.responses).sort()).toEqual(["200", "206", "302", "304", "400", "401", "403", "404", "412", "416", "422", "429", "503"]);
    // A 304 repeats ETag and Cache-Control only, as Spool sends it.
    expect(Object.keys(get.responses["304"].headers)).toEqual(["ETag", "Cache-Control"]);
    expect(Object.keys(get.responses["206"].content)).toEqual(["video/*", "multipart/byteranges"]);
    expect(get.responses["206"].headers["Content-Range"]).toBeDefined();
    expect(get.responses["416"].headers["Content-Range"].schema.examples).toEqual(["bytes */48213344"]);
    expect(get.parameters.map((p: Json) => `${p.in}:${p.name}`)).toEqual(
      expect.arrayContaining(["path:id", "query:download", "header:Range", "header:If-Range", "header:If-None-Match", "header:If-Match", "header:If-Modified-Since", "header:If-Unmodified-Since"]),
    );
    expect(spec.paths["/api/stream/{id}"].head.responses["206"]).toBeDefined();
  });

  test("the static folder: GET and HEAD, and validators of its own", () => {
    const item = spec.paths["/static/{path}"];
    expect([item.get.operationId, item.head.operationId]).toEqual(["getStaticFile", "headStaticFile"]);
    expect(item.get.responses["200"].headers.ETag.schema.description).toContain("modification and change times");
    expect(Object.keys(item.get.responses["304"].headers)).toEqual(["ETag", "Cache-Control"]);
  });

  test("the list and the HLS retry: revalidation and conflict documented", () => {
    const list = spec.paths["/api/videos"].get;
    // 401, 403 and 429: the key (or a session) is required, as for every management operation.
    expect(Object.keys(list.responses).sort()).toEqual(["200", "304", "400", "401", "403", "412", "429"]);
    expect(Object.keys(list.responses["200"].headers)).toEqual(["ETag", "Cache-Control"]);
    expect(list.responses["200"].content["application/json"].schema.properties.items).toBeDefined();
    const retry = spec.paths["/api/videos/{id}/hls/retry"].post;
    expect(retry.operationId).toBe("retryHls");
    expect(Object.keys(retry.responses).sort()).toEqual(["202", "400", "401", "403", "404", "409", "429"]);
    expect(retry.responses["409"].content["application/json"].schema.examples[0]).toEqual({
      error: { code: "hls_not_failed", message: "Only a failed HLS build can be retried, and its HLS ladder is ready" },
    });
  });

  test("a video's JSON: its 304, validators and conditional headers, beside the generated schemas", () => {
    const item = spec.paths["/api/videos/{id}"];
    // 401 and 429: a wrong key counts toward the failure limit even where the key is optional.
    expect(Object.keys(item.get.responses).sort()).toEqual(["200", "304", "400", "401", "403", "404", "412", "429"]);
    expect(Object.keys(item.get.responses["304"].headers)).toEqual(["ETag", "Cache-Control"]);
    expect(item.get.responses["304"].content).toBeUndefined();
    // The generated 200 keeps its schema and gains the headers.
    expect(item.get.responses["200"].content["application/json"].schema.properties.id).toBeDefined();
    expect(Object.keys(item.get.responses["200"].headers)).toEqual(["ETag", "Cache-Control"]);
    expect(item.get.parameters.map((p: Json) => `${p.in}:${p.name}`)).toEqual(["path:id", "header:If-None-Match", "header:If-Match"]);
    expect(Object.keys(item.patch.responses["200"].headers)).toEqual(["ETag"]);
    // PATCH reads its body by hand (unknown keys refused), so its body is documented in detail.
    expect(item.patch.requestBody.content["application/json"].schema.additionalProperties).toBe(false);
    expect(item.patch.requestBody.content["application/json"].schema.properties.title.description).toContain("1-500 characters");
    // Both JSON bodies the video routes read: too large (413) or not JSON (415).
    for (const op of [item.patch, spec.paths["/api/videos/{id}/tokens"].post]) {
      expect(op.responses["413"].content["application/json"].schema.examples[0].error.code).toBe("payload_too_large");
      expect(op.responses["415"].content["application/json"].schema.examples[0].error.code).toBe("unsupported_media_type");
    }
    for (const op of [item.patch, item.delete]) expect(op.parameters.map((p: Json) => `${p.in}:${p.name}`)).toEqual(["path:id", "header:If-Match"]);
    // The extension key that carried them is gone from every operation.
    expect(JSON.stringify(spec)).not.toContain("x-spool-");
  });

  test("the HLS files and thumbnails: their path, token and file-engine headers, and HEAD", () => {
    const headers = ["header:Range", "header:If-Range", "header:If-None-Match", "header:If-Modified-Since", "header:If-Match", "header:If-Unmodified-Since"];
    const cases = [
      ["/api/hls/{id}/{name}", ["path:id", "path:name", "query:token", ...headers], "headHlsFile"],
      ["/api/hls/{id}/{name}/{file}", ["path:id", "path:name", "path:file", "query:token", ...headers], "headHlsRenditionFile"],
      ["/api/videos/{id}/thumbnail.jpg", ["path:id", "query:t", "query:width", "query:token", ...headers], "headThumbnail"],
    ] as const;
    for (const [path, parameters, headId] of cases) {
      const { get, head } = spec.paths[path];
      expect({ path, parameters: get.parameters.map((p: Json) => `${p.in}:${p.name}`) }).toEqual({ path, parameters: [...parameters] });
      // The documented path parameters, not the bare generated ones.
      expect(get.parameters[0].description).toStartWith("Video id: 4-64 characters");
      expect(head.operationId).toBe(headId);
      expect(head.parameters).toEqual(get.parameters);
      expect(Object.keys(head.responses)).toEqual(Object.keys(get.responses));
      for (const status of ["200", "206", "401", "412", "416"]) {
        expect({ path, status, content: get.responses[status]?.content !== undefined }).toEqual({ path, status, content: true });
        expect(head.responses[status].content).toBeUndefined();
      }
      expect(get.responses["304"]).toBeDefined();
    }
  });

  test("every error response of the API has the one error shape, with an example; a HEAD answer documents no body", () => {
    let count = 0;
    for (const { path, method, op } of operations(spec)) {
      if (!path.startsWith("/api/")) continue;
      if (method === "head") {
        for (const [status, response] of Object.entries((op.responses ?? {}) as Json)) expect({ path, status, content: response.content }).toEqual({ path, status, content: undefined });
        continue;
      }
      for (const [status, response] of Object.entries((op.responses ?? {}) as Json)) {
        if (Number(status) < 400) continue;
        const media = response.content?.["application/json"];
        expect(media, `${method} ${path} ${status}`).toBeDefined();
        const schema = media.schema.$ref ? resolvePointer(spec, media.schema.$ref) : media.schema;
        expect(Object.keys(schema.properties), `${method} ${path} ${status}`).toEqual(["error"]);
        expect(schema.properties.error.required.sort()).toEqual(["code", "message"]);
        const example = media.example ?? schema.examples?.[0];
        expect(example?.error?.code, `${method} ${path} ${status} example`).toEqual(expect.any(String));
        count++;
      }
    }
    expect(count).toBeGreaterThan(40);
  });

  test("every field of the video JSON is typed, described and exemplified", () => {
    const video = spec.paths["/api/videos/{id}"].get.responses["200"].content["application/json"].schema;
    const undocumented: string[] = [];
    const walk = (schema: Json, at: string) => {
      for (const [name, raw] of Object.entries((schema.properties ?? {}) as Json)) {
        const field = raw as Json;
        const where = `${at}.${name}`;
        const typed = field.type ?? field.enum ?? field.const ?? field.anyOf;
        if (!typed || !field.description) undocumented.push(where);
        if (field.type === "object" || field.properties) walk(field, where);
        else if (!field.examples && !field.enum && !field.const) undocumented.push(`${where} (no example)`);
      }
    };
    walk(video, "video");
    expect(undocumented).toEqual([]);
    for (const name of ["duration", "width", "height", "videoCodec", "audioCodec", "bitrate", "container", "thumbnailUrl"]) expect(video.required).toContain(name);
    expect(video.properties.width.type).toEqual(["integer", "null"]);
    expect(video.properties.status.enum).toEqual(["importing", "uploading", "processing", "ready", "failed"]);
  });

  test("malformed ids, query parameters and bodies are documented as 400", () => {
    for (const [path, method] of [
      ["/api/videos", "get"],
      ["/api/videos", "post"],
      ["/api/videos/{id}", "get"],
      ["/api/videos/{id}", "patch"],
      ["/api/videos/{id}", "delete"],
      ["/api/videos/{id}/thumbnail.jpg", "get"],
      ["/api/uploads", "post"],
      ["/api/uploads/{id}", "patch"],
      ["/api/stream/{id}", "get"],
    ] as const) {
      expect(spec.paths[path][method].responses["400"], `${method} ${path}`).toBeDefined();
    }
    expect(spec.paths["/api/videos"].post.requestBody.content["multipart/form-data"].schema.required).toEqual(["file"]);
    expect(spec.paths["/api/videos"].post.responses["413"]).toBeDefined();
    expect(spec.paths["/api/videos"].post.responses["415"]).toBeDefined();
  });
});

describe("Swagger UI", () => {
  test("its page and assets come from Spool; nothing else is served from swagger-ui-dist", async () => {
    const html = await (await fetch(`${spool.url}/swagger`)).text();
    expect(html).toContain(`<script src="${ASSETS_PATH}/swagger-ui-bundle.js"`);
    expect(html).toContain(`href="${ASSETS_PATH}/swagger-ui.css"`);
    expect(html).not.toMatch(/https?:\/\//);
    const js = await fetch(`${spool.url}${ASSETS_PATH}/swagger-ui-bundle.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("etag")).toEqual(expect.any(String));
    const css = await fetch(`${spool.url}${ASSETS_PATH}/swagger-ui.css`, { method: "HEAD" });
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect((await fetch(`${spool.url}${ASSETS_PATH}/package.json`)).status).toBe(404);
    expect((await fetch(`${spool.url}${ASSETS_PATH}/..%2Fpackage.json`)).status).toBe(404);
  });

  test("loads in headless Chromium with no request leaving the machine, and renders every operation", async () => {
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on("request", (request) => requests.push(request.url()));
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      await page.goto(`${spool.url}/swagger`, { waitUntil: "networkidle" });
      await page.waitForSelector(".opblock", { timeout: 20_000 });

      const origin = new URL(spool.url).origin;
      expect(requests.length).toBeGreaterThanOrEqual(4);
      expect(requests.filter((url) => new URL(url).origin !== origin)).toEqual([]);
      expect(requests).toEqual(expect.arrayContaining([`${origin}/swagger`, `${origin}${ASSETS_PATH}/swagger-ui-bundle.js`, `${origin}${ASSETS_PATH}/swagger-ui.css`, `${origin}/swagger/json`]));
      expect(errors).toEqual([]);

      expect(await page.locator(".opblock").count()).toBe(operations(spec).length);
      expect(await page.locator(".info .title").first().textContent()).toContain("Spool");
      const paths = await page.locator(".opblock-summary-path").allTextContents();
      for (const path of ["/api/videos", "/api/videos/{id}", "/api/uploads", "/api/uploads/{id}", "/api/stream/{id}", "/api/videos/{id}/thumbnail.jpg"]) {
        expect(paths.map((p) => p.replace(/\u200b/g, ""))).toContain(path);
      }
    } finally {
      await browser.close();
    }
  }, 30_000); // Chromium: ~4 s alone on 2 cores, over bun's 5 s default under load (see bunfig.toml)
});
