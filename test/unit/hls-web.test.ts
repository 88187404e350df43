/** Pure pieces of HLS serving and the player pages: file names, cache policy, CORS, escaping. */
import { describe, expect, test } from "bun:test";
import { corsHeaders, preflightHeaders } from "../../src/http/cors.ts";
import { toHlsJson } from "../../src/schemas/hls.ts";
import { cacheControlFor, hlsFileName } from "../../src/modules/hls/routes.ts";
import { escapeHtml, formatDuration, scriptJson, videoBadge } from "../../src/modules/player/pages.ts";
import type { VideoJson } from "../../src/schemas/video.ts";

describe("hlsFileName", () => {
  test.each([
    ["master.m3u8", true],
    ["storyboard.vtt", true],
    ["storyboard_1.jpg", true],
    ["360p/index.m3u8", true],
    ["1080p/init.mp4", true],
    ["240p/init_1.mp4", true],
    ["240p/seg_00000.m4s", true],
    ["240p/seg_123456.m4s", true],
    // A source a few pixels high gets a rendition named after its own short side.
    ["8p/index.m3u8", true],
    ["2p/init.mp4", true],
    ["144p/seg_00000.m4s", true],
    ["0p/index.m3u8", false],
    ["12345p/index.m3u8", false],
    ["", false],
    ["source.mp4", false],
    ["../source.mp4", false],
    ["360p/../master.m3u8", false],
    ["%2e%2e/master.m3u8", false],
    ["360p/seg_1.m4s", false],
    ["360p/index.m3u8?x", false],
    ["p/index.m3u8", false],
    ["360p//index.m3u8", false],
    ["thumb_00001.jpg", false],
    ["master.m3u8/", false],
  ])("%p → %p", (name, ok) => {
    expect(hlsFileName(name)).toBe(ok ? name : null);
  });

  test("playlists are short-lived, the rest immutable", () => {
    expect(cacheControlFor("master.m3u8")).toBe("public, max-age=5");
    expect(cacheControlFor("360p/index.m3u8")).toBe("public, max-age=5");
    expect(cacheControlFor("storyboard.vtt")).toBe("public, max-age=5");
    expect(cacheControlFor("360p/seg_00001.m4s")).toBe("public, max-age=31536000, immutable");
    expect(cacheControlFor("360p/init_0.mp4")).toBe("public, max-age=31536000, immutable");
    expect(cacheControlFor("storyboard_1.jpg")).toBe("public, max-age=31536000, immutable");
  });
});

describe("corsHeaders", () => {
  const exposed = "Content-Range, Content-Length, Accept-Ranges, ETag";
  test.each([
    ["any origin", ["*"], "https://a.example", { "access-control-allow-origin": "*", "access-control-expose-headers": exposed }],
    ["any origin, no Origin header", ["*"], null, { "access-control-allow-origin": "*", "access-control-expose-headers": exposed }],
    ["listed origin", ["https://a.example", "https://b.example"], "https://b.example", { "access-control-allow-origin": "https://b.example", "access-control-expose-headers": exposed, vary: "Origin" }],
    ["unlisted origin", ["https://a.example"], "https://evil.example", { vary: "Origin" }],
    ["list, no Origin", ["https://a.example"], null, { vary: "Origin" }],
    ["disabled", [], "https://a.example", null],
  ])("%s", (_name, allowed, origin, expected) => {
    expect(corsHeaders(allowed, origin)).toEqual(expected);
  });

  test("preflight adds methods, headers and max-age only when allowed", () => {
    expect(preflightHeaders(corsHeaders(["*"], "https://a.example")!)).toMatchObject({
      "access-control-allow-methods": "GET, HEAD, OPTIONS",
      "access-control-max-age": "86400",
    });
    expect(preflightHeaders(corsHeaders(["*"], "https://a.example")!)["access-control-allow-headers"]).toContain("Range");
    expect(preflightHeaders({ vary: "Origin" })).toEqual({ vary: "Origin" });
  });
});

describe("toHlsJson", () => {
  test.each([
    ["none", 0, null, null],
    ["processing", 42, null, null],
    ["ready", 100, "/api/hls/abcd/master.m3u8", "/api/hls/abcd/storyboard.vtt"],
    ["failed", 0, null, null],
  ] as const)("%s", (status, progress, masterUrl, storyboardUrl) => {
    expect(toHlsJson({ id: "abcd", hlsStatus: status, hlsProgress: progress, hlsError: null })).toEqual({ status, progress, error: null, masterUrl, storyboardUrl });
  });
});

describe("player pages", () => {
  test("escapeHtml", () => {
    expect(escapeHtml(`<script>alert("x" & 'y')</script>`)).toBe("&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;");
  });

  test("scriptJson cannot close its script element", () => {
    const text = scriptJson({ title: "</script><script>alert(1)</script><!--", sep: "\u2028" });
    expect(text).not.toContain("<");
    expect(text).not.toContain(">");
    expect(JSON.parse(text)).toEqual({ title: "</script><script>alert(1)</script><!--", sep: "\u2028" });
  });

  test.each([
    [0, "0:00"],
    [61.4, "1:01"],
    [3599.6, "1:00:00"],
    [3725, "1:02:05"],
    [null, ""],
  ])("formatDuration(%p) = %p", (seconds, expected) => expect(formatDuration(seconds)).toBe(expected));

  const base = { status: "ready", hls: { status: "none", progress: 0 } };
  test.each([
    [{ ...base, status: "uploading" }, "Uploading"],
    [{ ...base, status: "processing" }, "Processing"],
    [{ ...base, status: "failed" }, "Failed"],
    [base, "MP4"],
    [{ ...base, hls: { status: "queued", progress: 0 } }, "Queued"],
    [{ ...base, hls: { status: "processing", progress: 37 } }, "Transcoding 37%"],
    [{ ...base, hls: { status: "ready", progress: 100 } }, "HLS"],
    [{ ...base, hls: { status: "failed", progress: 0 } }, "MP4 only"],
  ])("badge %#", (video, text) => {
    expect(videoBadge(video as unknown as VideoJson).text).toBe(text);
  });
});
