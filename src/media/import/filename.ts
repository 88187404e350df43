/**
 * The name an imported file goes by. Apart from ./download.ts so that registering an import
 * does not load the downloader (node:http, node:https, node:zlib) into a process that never runs one.
 */
/** A file name from Content-Disposition (`filename*` or `filename`), else the URL's last path segment. */
export function filenameFor(url: URL, disposition: string | undefined): string | null {
  if (disposition) {
    const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(disposition);
    if (star) {
      try {
        return decodeURIComponent(star[1]!.trim());
      } catch {
        // fall through to the plain form
      }
    }
    const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/.exec(disposition);
    if (plain) return (plain[1] ?? plain[2]!).replace(/\\(.)/g, "$1");
  }
  const segment = url.pathname.split("/").filter(Boolean).pop();
  if (!segment) return null;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
