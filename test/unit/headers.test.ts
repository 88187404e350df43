import { describe, expect, test } from "bun:test";
import { asciiFallback, contentDisposition } from "../../src/http/content-disposition.ts";
import { contentTypeFor, isJsonContentType } from "../../src/http/content-type.ts";
import { variantKey, type ServeOptions } from "../../src/files/entity.ts";
import { layoutMultipart } from "../../src/http/multipart.ts";
import { safeSegments } from "../../src/modules/static/resolve.ts";

describe("contentTypeFor", () => {
  test.each([
    ["a.mp4", "video/mp4"],
    ["A.MP4", "video/mp4"],
    ["a.m4v", "video/x-m4v"],
    ["a.mov", "video/quicktime"],
    ["a.webm", "video/webm"],
    ["a.mkv", "video/x-matroska"],
    ["a.ogv", "video/ogg"],
    ["a.ogg", "audio/ogg"],
    ["a.mp3", "audio/mpeg"],
    ["a.m4a", "audio/mp4"],
    ["seg.ts", "video/mp2t"],
    ["index.m3u8", "application/vnd.apple.mpegurl"],
    ["seg.m4s", "video/iso.segment"],
    ["thumbs.vtt", "text/vtt; charset=utf-8"],
    ["dir.mp4/noext", "application/octet-stream"],
    [".hidden", "application/octet-stream"],
  ])("%s → %s", (name, type) => expect(contentTypeFor(name)).toBe(type));
});

describe("contentDisposition (RFC 6266 / 8187)", () => {
  test.each([
    ["inline, no name", "inline", undefined, "inline"],
    ["ASCII name", "attachment", "My Video.mp4", 'attachment; filename="My Video.mp4"'],
    ["quotes and backslashes are replaced", "attachment", 'a"b\\c.mp4', 'attachment; filename="a_b_c.mp4"; filename*=UTF-8\'\'a%22b_c.mp4'],
    ["accents: stripped fallback plus filename*", "attachment", "Café.mp4", "attachment; filename=\"Cafe.mp4\"; filename*=UTF-8''Caf%C3%A9.mp4"],
    ["non-Latin", "attachment", "日本.mp4", "attachment; filename=\"__.mp4\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.mp4"],
    ["path separators are removed", "attachment", "../etc/passwd", 'attachment; filename=".._etc_passwd"'],
    ["control characters are removed", "attachment", "a\r\nb.mp4", 'attachment; filename="a__b.mp4"'],
    ["C1 controls too", "attachment", "a\u0085b.mp4", 'attachment; filename="a_b.mp4"'],
    // Right-to-left override: "txt.exe.mp4" would show as "4pm.exe.txt".
    ["bidi controls are dropped", "attachment", "é \u202etxt.exe\u202c\u2066\u200f.mp4", "attachment; filename=\"e txt.exe.mp4\"; filename*=UTF-8''%C3%A9%20txt.exe.mp4"],
  ] as [string, "inline" | "attachment", string | undefined, string][])("%s", (_n, type, name, expected) => {
    expect(contentDisposition(type, name)).toBe(expected);
  });
  test("empty fallback becomes download", () => expect(asciiFallback("   ")).toBe("download"));
});

describe("safeSegments (static path confinement)", () => {
  test.each([
    ["a.txt", ["a.txt"]],
    ["dir/a.txt", ["dir", "a.txt"]],
    ["with%20space.txt", ["with space.txt"]],
    ["%252e%252e/x", ["%2e%2e", "x"]], // decoded once: a literal name, not a traversal
    ["../x", undefined],
    ["%2e%2e/x", undefined],
    ["dir/%2E%2E/%2E%2E/x", undefined],
    ["./x", undefined],
    [".env", undefined],
    ["dir/.git/config", undefined],
    ["a%00.txt", undefined],
    ["a\\..\\b", undefined],
    ["%5c..%5cb", undefined],
    ["dir//a", undefined],
    ["", undefined],
    ["%E0%A4%A", undefined],
  ] as [string, string[] | undefined][])("%s", (raw, expected) => expect(safeSegments(raw)).toEqual(expected));
});

test("multipart layout length equals the bytes it frames", () => {
  const ranges = [
    { start: 0, end: 9 },
    { start: 100, end: 149 },
  ];
  const layout = layoutMultipart(ranges, 1000, "video/mp4", "B");
  const text = layout.heads.join("") + layout.tail;
  expect(layout.length).toBe(text.length + 10 + 50);
  expect(layout.heads[0]).toBe("--B\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-9/1000\r\n\r\n");
  expect(layout.heads[1]).toBe("\r\n--B\r\nContent-Type: video/mp4\r\nContent-Range: bytes 100-149/1000\r\n\r\n");
  expect(layout.tail).toBe("\r\n--B--\r\n");
});

describe("isJsonContentType", () => {
  test.each([
    ["application/json", true],
    ["Application/JSON; charset=utf-8", true],
    ["application/vnd.api+json", true],
    ["application/problem+json; charset=utf-8", true],
    ["multipart/form-data; boundary=x", false],
    ["text/json", false],
    ["application/jsonl", true],
    ["", false],
    [null, false],
  ] as const)("%p → %p", (type, expected) => expect(isJsonContentType(type)).toBe(expected));
});

describe("variantKey: one cache entry per set of options that shapes the headers", () => {
  const variants: ServeOptions[] = [
    {},
    { contentType: "image/jpeg" },
    { cacheControl: "public, max-age=86400" },
    { cacheControl: "private, max-age=3600" },
    { disposition: "attachment" },
    { disposition: "attachment", filename: "a.mp4" },
    { filename: "a.mp4" },
    { etag: '"abc"' },
    { lastModified: 1_700_000_000 },
    { headers: { "access-control-allow-origin": "*" } },
    { headers: { "access-control-allow-origin": "https://a.example" } },
  ];
  test("every variant has its own key, and each key begins with the path (forget by prefix)", () => {
    const keys = variants.map((options) => variantKey("/d/v.mp4", options));
    expect(new Set(keys).size).toBe(variants.length);
    for (const key of keys) expect(key.startsWith("/d/v.mp4")).toBe(true);
  });
  test("the same options give the same key; the pool objects (memory tier, descriptors) do not count", () => {
    expect(variantKey("/d/v.mp4", { cacheControl: "x", headers: { a: "1" } })).toBe(variantKey("/d/v.mp4", { cacheControl: "x", headers: { a: "1" } }));
    expect(variantKey("/d/v.mp4", { descriptors: undefined, memory: undefined })).toBe(variantKey("/d/v.mp4", {}));
  });
});
