/**
 * The player's HTML: the library page (`GET /`) and the watch page (`GET /watch/:id`). Pure
 * template functions; everything interactive lives in assets/*.js, plain browser JavaScript
 * with no build step. Data reaches the scripts as JSON in a non-executable script element.
 */
import type { VideoJson } from "../../schemas/video.ts";

export const ASSET_PREFIX = "/assets";

/** Inline SVG icons (no icon font, no emoji: they render the same everywhere). */
export const ICONS = {
  play: '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M8 5v14l11-7z"/></svg>',
  pause: '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M6 5h4v14H6zm8 0h4v14h-4z"/></svg>',
  volume: '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M3 9v6h4l5 5V4L7 9H3zm13.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4z"/></svg>',
  muted: '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M3 9v6h4l5 5V4L7 9H3zm13.6 3 2.7-2.7-1.4-1.4-2.7 2.7-2.7-2.7-1.4 1.4 2.7 2.7-2.7 2.7 1.4 1.4 2.7-2.7 2.7 2.7 1.4-1.4z"/></svg>',
  fullscreen: '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M7 14H5v5h5v-2H7v-3zm-2-4h2V7h3V5H5v5zm12 7h-3v2h5v-5h-2v3zM14 5v2h3v3h2V5h-5z"/></svg>',
} as const;

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** JSON safe inside a <script type="application/json"> element (no `</script>`, no `<!--`). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}` : `${m}:${String(s).padStart(2, "0")}`;
}

function layout(title: string, body: string, scripts: string[], signOut = false): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ASSET_PREFIX}/spool.css">
</head>
<body>
<header class="top"><a class="brand" href="/">Spool</a><nav><a href="/">Library</a><a href="/swagger">API</a></nav>${signOut ? '<button type="button" id="sign-out" class="link">Sign out</button>' : ""}</header>
${body}
${scripts.map((src) => `<script src="${src}"></script>`).join("\n")}
</body>
</html>
`;
}

/** What the badge under a video says about it. */
export function videoBadge(video: VideoJson): { text: string; kind: string } {
  if (video.status === "failed") return { text: "Failed", kind: "bad" };
  if (video.status !== "ready") return { text: video.status === "uploading" ? "Uploading" : "Processing", kind: "busy" };
  switch (video.hls.status) {
    case "ready":
      return { text: "HLS", kind: "good" };
    case "processing":
      return { text: `Transcoding ${video.hls.progress}%`, kind: "busy" };
    case "queued":
      return { text: "Queued", kind: "busy" };
    case "failed":
      return { text: "MP4 only", kind: "warn" };
    default:
      return { text: "MP4", kind: "plain" };
  }
}

function card(video: VideoJson): string {
  const badge = videoBadge(video);
  const poster = video.thumbnailUrl ? `<img src="${escapeHtml(video.thumbnailUrl)}?width=320" alt="" loading="lazy">` : `<div class="noposter"></div>`;
  const duration = formatDuration(video.duration);
  // library.js renders the card again with its actions (rename, delete, copy); this is the no-script view.
  return `<li class="card${video.status === "failed" ? " failed" : ""}" data-id="${escapeHtml(video.id)}">
<a href="/watch/${escapeHtml(video.id)}">
<div class="thumb">${poster}${duration ? `<span class="duration">${duration}</span>` : ""}</div>
<div class="meta"><span class="title" title="${escapeHtml(video.title)}">${escapeHtml(video.title)}</span><span class="badge ${badge.kind}" data-badge>${escapeHtml(badge.text)}</span></div>
</a>${video.status === "failed" && video.error ? `\n<p class="error">${escapeHtml(video.error)}</p>` : ""}
</li>`;
}

export interface LibraryPageOptions {
  /** The tus-js-client script URL (resumable uploads); null when the package is missing (multipart then). */
  tusScript: string | null;
  /** Ids of failed videos that came from a URL: their cards offer a retry. */
  imports?: string[];
}

export function libraryPage(videos: VideoJson[], options: LibraryPageOptions = { tusScript: null }): string {
  const list = videos.length ? videos.map(card).join("\n") : "";
  const body = `<main class="library">
<section class="panel upload">
<h1>Upload a video</h1>
<form id="upload-form" action="/api/videos" method="post" enctype="multipart/form-data">
<label class="file"><input type="file" name="file" id="upload-file" accept="video/*,audio/*" required><span id="upload-file-name">Choose a file…</span></label>
<input type="text" name="title" id="upload-title" placeholder="Title (optional)" maxlength="500">
<select name="playback" id="upload-playback" aria-label="Who can play it"><option value="">Default playback</option><option value="public">Public</option><option value="signed">Signed links only</option></select>
<button type="submit" id="upload-submit">Upload</button>
</form>
<div id="resume-offer" class="offer" role="alertdialog" hidden>
<p id="resume-text">An earlier upload of this file stopped part-way.</p>
<button type="button" id="resume-yes">Resume it</button>
<button type="button" id="resume-no" class="secondary">Start over</button>
</div>
<form id="import-form" class="import" action="/api/videos" method="post">
<input type="url" id="import-url" placeholder="…or import from a URL (http or https)" required>
<button type="submit" id="import-submit">Import</button>
</form>
<div id="upload-status" class="job" hidden>
<div class="step"><span class="label">Upload</span><progress id="upload-progress" max="100" value="0"></progress><span class="value" id="upload-percent">0%</span></div>
<div class="step"><span class="label">Processing</span><span class="state" id="upload-state">waiting</span></div>
<div class="step"><span class="label">Adaptive streaming</span><progress id="hls-progress" max="100" value="0"></progress><span class="value" id="hls-percent">–</span></div>
<p class="message" id="upload-message" role="status"></p>
<a id="upload-watch" class="button" hidden>Watch</a>
</div>
</section>
<section class="panel">
<h2>Library</h2>
<ul class="grid" id="library">${list}</ul>
<script type="application/json" id="library-data">${scriptJson(videos)}</script>
<script type="application/json" id="library-imports">${scriptJson(options.imports ?? [])}</script>
<p class="empty" id="library-empty"${videos.length ? " hidden" : ""}>No videos yet: upload one above.</p>
</section>
</main>`;
  const scripts = options.tusScript ? [options.tusScript, `${ASSET_PREFIX}/library.js`] : [`${ASSET_PREFIX}/library.js`];
  return layout("Spool", body, scripts, true);
}

/** The library page of a browser that is not signed in: the key, nothing else. */
export function signInPage(): string {
  const body = `<main class="library">
<section class="panel signin">
<h1>Sign in</h1>
<p>Enter the API key. It is in <code>DATA_DIR/api-key</code> on the server (or its <code>API_KEY</code> variable).</p>
<form id="signin-form" action="/api/session" method="post">
<input type="password" name="key" id="signin-key" placeholder="API key" autocomplete="current-password" required>
<button type="submit" id="signin-submit">Sign in</button>
</form>
<p class="message error" id="signin-message" role="alert"></p>
</section>
</main>`;
  return layout("Sign in · Spool", body, [`${ASSET_PREFIX}/library.js`]);
}

export interface WatchPageOptions {
  /** The hls.js script URL; null when the package is not installed. */
  hlsScript: string | null;
}

/** The player box (video, overlay, controls) the watch and embed pages share with player.js. */
function playerBox(video: VideoJson): string {
  return `<div class="player" id="player" tabindex="-1">
<video id="video" playsinline preload="metadata"${video.thumbnailUrl ? ` poster="${escapeHtml(video.thumbnailUrl)}"` : ""}></video>
<div class="overlay" id="overlay" hidden></div>
<div class="controls" id="controls">
<button type="button" id="play" class="icon" aria-label="Play">${ICONS.play}</button>
<div class="scrub" id="scrub" role="slider" aria-label="Seek" aria-valuemin="0" aria-valuemax="0" aria-valuenow="0" tabindex="0">
<div class="track"><div class="buffered" id="buffered"></div><div class="played" id="played"></div></div>
<div class="preview" id="preview" hidden><div class="frame" id="preview-frame"></div><span id="preview-time">0:00</span></div>
</div>
<span class="time" id="time">0:00 / 0:00</span>
<select id="quality" aria-label="Quality" hidden></select>
<button type="button" id="mute" class="icon" aria-label="Mute">${ICONS.volume}</button>
<button type="button" id="fullscreen" class="icon" aria-label="Full screen">${ICONS.fullscreen}</button>
</div>
</div>`;
}

const playerData = (video: VideoJson) =>
  `<script type="application/json" id="video-data">${scriptJson(video)}</script>
<script type="application/json" id="player-icons">${scriptJson(ICONS)}</script>`;

const playerScripts = (options: WatchPageOptions) => (options.hlsScript ? [options.hlsScript, `${ASSET_PREFIX}/player.js`] : [`${ASSET_PREFIX}/player.js`]);

/** Why a failed video failed, said once: the error's own words when they already say "failed". */
export function failureMessage(video: VideoJson): string {
  const error = video.error?.trim();
  if (!error) return "Processing this video failed.";
  return /\bfail/i.test(error) ? error : `Processing failed: ${error}`;
}

export function watchPage(video: VideoJson, options: WatchPageOptions): string {
  if (video.status === "failed") {
    // Nothing to play: the reason, once, and no player, download link or script.
    const body = `<main class="watch">
<section class="panel failed-video">
<h1>${escapeHtml(video.title)}</h1>
<p class="error" id="failure" role="alert">${escapeHtml(failureMessage(video))}</p>
<p><a href="/">Back to the library</a></p>
</section>
</main>`;
    return layout(video.title, body, []);
  }
  const meta = [formatDuration(video.duration), video.width && video.height ? `${video.width}×${video.height}` : "", video.videoCodec ?? "", video.audioCodec ?? ""]
    .filter(Boolean)
    .join(" · ");
  const body = `<main class="watch">
${playerBox(video)}
<section class="details">
<h1>${escapeHtml(video.title)}</h1>
<p class="meta">${escapeHtml(meta)}</p>
<p class="engine">Playing via <span id="engine">…</span><span id="level"></span></p>
<p class="share"><button type="button" id="share" class="secondary">Copy link at <span id="share-time">0:00</span></button> <input type="text" id="share-link" readonly aria-label="Link to this moment" hidden></p>
<p><a href="${escapeHtml(video.streamUrl)}${video.streamUrl.includes("?") ? "&amp;" : "?"}download=1">Download original</a></p>
</section>
</main>
${playerData(video)}`;
  return layout(video.title, body, playerScripts(options));
}

/**
 * The embed page (`/embed/:id`, for an `<iframe>` on other sites): the player alone, filling
 * the frame, no site chrome. A failed video says so in the frame.
 */
export function embedPage(video: VideoJson, options: WatchPageOptions): string {
  const head = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(video.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ASSET_PREFIX}/spool.css">
</head>
<body class="embed">
`;
  if (video.status === "failed") {
    return `${head}<div class="player"><div class="overlay" id="failure" role="alert">${escapeHtml(failureMessage(video))}</div></div>
</body>
</html>
`;
  }
  return `${head}${playerBox(video)}
${playerData(video)}
${playerScripts(options).map((src) => `<script src="${src}"></script>`).join("\n")}
</body>
</html>
`;
}

export function errorPage(title: string, message: string): string {
  return layout(`${title} · Spool`, `<main class="library"><section class="panel"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></section></main>`, []);
}

export function notFoundPage(message: string): string {
  return layout("Not found · Spool", `<main class="library"><section class="panel"><h1>Not found</h1><p>${escapeHtml(message)}</p><p><a href="/">Back to the library</a></p></section></main>`, []);
}
