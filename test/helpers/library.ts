/** Client-side helpers for the library API in tests: upload, poll until settled, inspect disk. */
import { existsSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import type { VideoJson } from "../../src/schemas/video.ts";
import { AUTH } from "./spool.ts";

/** The API's own type for a video's JSON: tests read what the server declares. */
export type { VideoJson };

export interface ErrorJson {
  error: { code: string; message: string };
}

/** POST /api/videos with `file` (named `name`, typed `type`) and an optional title. */
/** POST /api/videos with `file` (named `name`, typed `type`), an optional title and playback, with the test key. */
export async function uploadMultipart(base: string, path: string, options: { name?: string; type?: string; title?: string; playback?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  const form = new FormData();
  if (options.title !== undefined) form.append("title", options.title);
  if (options.playback !== undefined) form.append("playback", options.playback);
  const bytes = await Bun.file(path).arrayBuffer();
  form.append("file", new Blob([bytes], { type: options.type ?? "application/octet-stream" }), options.name ?? basename(path));
  return fetch(`${base}/api/videos`, { method: "POST", body: form, headers: options.headers ?? AUTH });
}

/** Polls GET /api/videos/:id until the video is `ready` or `failed`. */
export async function waitUntilSettled(base: string, id: string, timeoutMs = 30_000): Promise<VideoJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${base}/api/videos/${id}`, { headers: AUTH });
    if (response.status !== 200) throw new Error(`GET /api/videos/${id}: ${response.status} ${await response.text()}`);
    const video = (await response.json()) as VideoJson;
    if (video.status === "ready" || video.status === "failed") return video;
    if (Date.now() > deadline) throw new Error(`video ${id} still ${video.status} after ${timeoutMs} ms`);
    await Bun.sleep(50);
  }
}

export async function listAll(base: string): Promise<VideoJson[]> {
  const items: VideoJson[] = [];
  let cursor: string | null = null;
  do {
    const page = (await (await fetch(`${base}/api/videos?limit=200${cursor ? `&cursor=${cursor}` : ""}`, { headers: AUTH })).json()) as { items: VideoJson[]; nextCursor: string | null };
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

/** Every file below `dir`, relative to it, sorted ([] when it does not exist). */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? "", e.name).slice(dir.length + 1))
    .sort();
}

export async function expectError(response: Response, status: number, code: string): Promise<ErrorJson> {
  const body = (await response.json()) as ErrorJson;
  if (response.status !== status || body.error?.code !== code) {
    throw new Error(`expected ${status} ${code}, got ${response.status} ${JSON.stringify(body)}`);
  }
  if (!response.headers.get("content-type")?.startsWith("application/json")) throw new Error("error is not JSON");
  if (typeof body.error.message !== "string" || body.error.message.length === 0) throw new Error("error has no message");
  return body;
}
