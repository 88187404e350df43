/**
 * Why an import failed, typed: `code` for programs, `message` for people ("source answered
 * 404 Not Found", "timed out after 30 s without data"), `status` for the API when the failure is
 * known before anything is downloaded (a bad URL is the client's 400).
 */
export type ImportErrorCode =
  /** Not an http(s) URL, or malformed. */
  | "invalid_url"
  /** The host (or an address it resolves to, or a redirect's) is not one imports may reach. */
  | "blocked_address"
  /** IMPORT_ALLOWED_HOSTS is set and does not name the host. */
  | "host_not_allowed"
  /** The host name does not resolve. */
  | "dns_failed"
  /** The source answered with a status that is not the file (404, 500...). */
  | "source_status"
  /** Redirect trouble: too many, no Location, or to a scheme other than http(s). */
  | "redirect"
  /** No answer in time, or no data for too long. */
  | "timeout"
  /** Over the size limit (by Content-Length, Content-Range or the bytes counted). */
  | "too_large"
  /** The connection failed or dropped and could not be resumed. */
  | "network"
  /**
   * The source's answer cannot be the file: a body longer than it announced, a Content-Encoding
   * this server does not decode, compressed data that does not decompress.
   */
  | "source_invalid"
  /** The caller cancelled (the video was deleted, the server is stopping). */
  | "aborted";

const STATUS: Record<ImportErrorCode, number> = {
  invalid_url: 400,
  blocked_address: 400,
  host_not_allowed: 400,
  dns_failed: 502,
  source_status: 502,
  redirect: 502,
  timeout: 504,
  too_large: 413,
  network: 502,
  source_invalid: 502,
  aborted: 499,
};

export class ImportError extends Error {
  override name = "ImportError";
  constructor(
    readonly code: ImportErrorCode,
    message: string,
    /** The source's HTTP status, for `source_status`. */
    readonly sourceStatus?: number,
  ) {
    super(message);
  }

  /** The HTTP status an API answers with when this is known before the import starts (400 for a bad URL). */
  get status(): number {
    return STATUS[this.code];
  }

  /** A client error: the URL itself will never work (400 at request time). */
  get isClientError(): boolean {
    return this.status === 400;
  }
}
