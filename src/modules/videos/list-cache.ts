/**
 * Serialized pages of `GET /api/videos`, reused while the database is unchanged.
 *
 * Listing is the library's busiest read (players and dashboards poll it), and building a page
 * (query, row mapping, JSON) costs several times more than checking that nothing changed. The
 * check is the database's revision (src/db/revision.ts), not a time-to-live. A page also gets a strong ETag, so a
 * poller that sends If-None-Match is answered 304 without a body.
 */
import { contentEtag } from "../../http/conditional.ts";

export interface CachedPage {
  token: string;
  body: string;
  etag: string;
}

export class ListPageCache {
  private readonly pages = new Map<string, CachedPage>();

  constructor(
    private readonly currentToken: () => string,
    // A page holds up to 200 videos (~150 KB of JSON): 64 of them bound the cache to ~10 MB.
    private readonly maxPages = 64,
  ) {}

  /** The page for `key`, built by `build` (whose errors pass through, uncached) when stale. */
  async get(key: string, build: () => Promise<string>): Promise<CachedPage> {
    const token = this.currentToken();
    const cached = this.pages.get(key);
    if (cached && cached.token === token) return cached;
    const body = await build();
    const page = { token, body, etag: contentEtag(body) };
    // The token was read before the query, so a write racing the build makes this entry stale
    // at once rather than serving old rows under a new token.
    if (this.pages.size >= this.maxPages && !this.pages.has(key)) this.pages.delete(this.pages.keys().next().value!);
    this.pages.set(key, page);
    return page;
  }
}
