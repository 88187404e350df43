/**
 * Headers for the HTML pages Spool serves (the library, the player, Swagger UI): not framed,
 * not sniffed, no referrer to other sites, nothing loaded from elsewhere (each page's CSP).
 */
export function pageHeaders(contentSecurityPolicy: string): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": contentSecurityPolicy,
  };
}
