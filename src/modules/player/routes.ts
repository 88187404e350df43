/**
 * The web player: `GET /` (library + upload), `GET /watch/:id`, and their assets under /assets/
 * (Spool's own CSS/JS, and hls.js from the installed package: no CDN, works offline).
 * Assets go through the file engine, so they get validators, ranges and HEAD like everything else.
 */
import { join } from "node:path";
import { Elysia, t } from "elysia";
import { tokenOf, type AccessControl } from "../../access/service.ts";
import { FileCache } from "../../files/cache.ts";
import { serveFile } from "../../files/send-file.ts";
import { HttpError, errorResponse } from "../../http/errors.ts";
import { pageHeaders } from "../../http/page-headers.ts";
import { isVideoId } from "../../library/ids.ts";
import { hasFailureDetails, toVideoJson, tokenizedJson, viewerJson } from "../../schemas/video.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import { JobQueue } from "../../queue/jobs.ts";
import { PLAYER_ASSETS_DIR, packageFile } from "../../paths.ts";
import { ASSET_PREFIX, embedPage, errorPage, libraryPage, notFoundPage, signInPage, watchPage } from "./pages.ts";

const OWN_ASSETS = new Set(["spool.css", "library.js", "player.js"]);

const HLS_JS = packageFile("hls.js/dist/hls.min.js");
const TUS_JS = packageFile("tus-js-client/dist/tus.min.js");
const versionOf = (name: string) => {
  const pkg = packageFile(`${name}/package.json`);
  try {
    return pkg ? String((require(pkg) as { version?: string }).version ?? "") : "";
  } catch {
    return "";
  }
};
const HLS_JS_VERSION = versionOf("hls.js");

/**
 * Pages must not be framed, sniffed or load anything from elsewhere. hls.js needs blob: workers
 * and MSE. `mediaOrigin` (S3_DELIVERY=redirect): the bucket a `<video>` playing the original
 * file is redirected to.
 */
function pageHeadersFor(mediaOrigin?: string): Record<string, string> {
  const media = mediaOrigin ? `'self' blob: ${mediaOrigin}` : "'self' blob:";
  return pageHeaders(
    `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src ${media}; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'`,
  );
}

/**
 * The embed page is made to be framed by any site (frame-ancestors *, no X-Frame-Options); the
 * rest of its policy is the watch page's. Refusals inside a frame are framable too, so the
 * embedding site shows why instead of a browser error.
 */
function embedHeadersFor(forPages: Record<string, string>): Record<string, string> {
  const { "x-frame-options": _denied, ...rest } = forPages;
  return { ...rest, "content-security-policy": rest["content-security-policy"]!.replace("frame-ancestors 'none'", "frame-ancestors *") };
}

/** How long the token a signed-in owner's watch page gets lasts. */
const OWNER_PAGE_TOKEN_TTL_S = 6 * 60 * 60;

const TOKEN_PAGE_MESSAGES: Record<string, string> = {
  token_missing: "This video is private: it plays only through a link with a playback token.",
  token_expired: "This link has expired: ask whoever shared it for a new one.",
  token_wrong_video: "This link is for another video.",
};

/**
 * A 404's words. Only a well-formed id is named: anything else in the path would be a sentence of
 * the requester's on Spool's own page ("Your session has expired, enter your key at …"), and the
 * embed's may be framed by any site. Escaped either way; this is about the text, not markup.
 */
function noSuchVideo(id: string): string {
  return isVideoId(id) ? `There is no video with id ${id}.` : "There is no video at this address.";
}

export function playerRoutes(library: VideoLibrary, access: AccessControl, cacheTtlMs: number, mediaOrigin?: string) {
  const forPages = pageHeadersFor(mediaOrigin);
  const forEmbeds = embedHeadersFor(forPages);
  const page = (html: string, status = 200) => new Response(html, { status, headers: forPages });
  const embed = (html: string, status = 200) => new Response(html, { status, headers: forEmbeds });
  const cache = new FileCache(cacheTtlMs);
  // Read only: which failed videos were imports (their last import job holds the URL to retry).
  const jobs = new JobQueue(library.handle);
  const hlsScript = HLS_JS ? `${ASSET_PREFIX}/hls.min.js${HLS_JS_VERSION ? `?v=${HLS_JS_VERSION}` : ""}` : null;
  const tusVersion = versionOf("tus-js-client");
  const tusScript = TUS_JS ? `${ASSET_PREFIX}/tus.min.js${tusVersion ? `?v=${tusVersion}` : ""}` : null;
  return new Elysia({ name: "spool.player" })
    .get(
      "/",
      async ({ request, server }) => {
        // The library is the owner's page: without a session it is a sign-in form, nothing else.
        const principal = await access.principal(request, server).catch(() => null);
        if (principal === null) return page(signInPage());
        const { items } = await library.list({ limit: 100 });
        const failed = items.filter((row) => row.status === "failed");
        const imports = (await Promise.all(failed.map(async (row) => ((await jobs.forVideo(row.id, "import")).length ? row.id : null)))).filter((id): id is string => id !== null);
        return page(libraryPage(items.map(toVideoJson), { tusScript, imports }));
      },
      { detail: { hide: true } },
    )
    .get(
      "/watch/:id",
      async ({ params, request, server }) => {
        const row = isVideoId(params.id) ? await library.get(params.id) : undefined;
        if (!row) return page(notFoundPage(noSuchVideo(params.id)), 404);
        let video = toVideoJson(row);
        // Why it failed is the owner's to read (src/schemas/video.ts viewerJson).
        if (hasFailureDetails(video) && !(await access.isOwner(request, server))) video = viewerJson(video);
        if (row.playback === "signed") {
          let token: string | null;
          try {
            token = (await access.playback(request, row.id, row.playback, server)).token;
          } catch (error) {
            if (!(error instanceof HttpError)) throw error;
            return page(errorPage("Cannot play this video", TOKEN_PAGE_MESSAGES[error.code] ?? "This link is not valid for this video."), error.status);
          }
          // The owner (signed in) watches with a token made for the page; a viewer's own is passed on.
          token ??= (await access.tokens.mint(row.id, OWNER_PAGE_TOKEN_TTL_S)).token;
          video = tokenizedJson(video, token);
        }
        return page(watchPage(video, { hlsScript }));
      },
      { params: t.Object({ id: t.String() }), detail: { hide: true } },
    )
    .get(
      "/embed/:id",
      async ({ params, request, server }) => {
        const row = isVideoId(params.id) ? await library.get(params.id) : undefined;
        if (!row) return embed(notFoundPage(noSuchVideo(params.id)), 404);
        // A frame on another site: a viewer's page, whoever is signed in.
        let video = viewerJson(toVideoJson(row));
        if (row.playback === "signed") {
          // Only the URL's token opens a signed embed: a frame on another site has no session,
          // and one on Spool's own site must not play on the owner's cookie for everyone.
          const token = tokenOf(request.url);
          if (!token) return embed(errorPage("Cannot play this video", TOKEN_PAGE_MESSAGES.token_missing!), 403);
          try {
            await access.playback(request, row.id, row.playback, server);
          } catch (error) {
            if (!(error instanceof HttpError)) throw error;
            return embed(errorPage("Cannot play this video", TOKEN_PAGE_MESSAGES[error.code] ?? "This link is not valid for this video."), error.status);
          }
          video = tokenizedJson(video, token);
        }
        return embed(embedPage(video, { hlsScript }));
      },
      { params: t.Object({ id: t.String() }), detail: { hide: true } },
    )
    .get(
      `${ASSET_PREFIX}/:file`,
      ({ params, request }) => {
        if (params.file === "hls.min.js" && HLS_JS) return serveFile(request, HLS_JS, { cacheControl: "public, max-age=604800" }, cache);
        if (params.file === "tus.min.js" && TUS_JS) return serveFile(request, TUS_JS, { cacheControl: "public, max-age=604800" }, cache);
        if (OWN_ASSETS.has(params.file)) return serveFile(request, join(PLAYER_ASSETS_DIR, params.file), { cacheControl: "public, max-age=300" }, cache);
        return errorResponse(404, "not_found", "No such asset");
      },
      { params: t.Object({ file: t.String() }), detail: { hide: true } },
    );
}
