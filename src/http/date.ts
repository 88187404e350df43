/**
 * The Date header Bun leaves out. Bun 1.4.5 sends `Date` on every answer but those to HEAD,
 * and RFC 9110 §6.6.1 wants it on every 2xx-4xx answer of a server with a clock (a HEAD answer
 * carries the headers a GET would, §9.3.2). Only HEAD pays for this.
 */
let second = -1;
let text = "";

/** The current time as an IMF-fixdate, formatted once a second. */
export function httpDateNow(now = Date.now()): string {
  const s = Math.floor(now / 1000);
  if (s !== second) {
    second = s;
    text = new Date(s * 1000).toUTCString();
  }
  return text;
}

/** Adds `Date` to an answer (one to HEAD) that has none. */
export function withDate(response: Response): Response {
  if (!response.headers.has("date")) response.headers.set("date", httpDateNow());
  return response;
}

/** `withDate` when `request` is a HEAD. */
export function dateForHead(request: Request, response: Response): Response {
  return request.method === "HEAD" ? withDate(response) : response;
}
