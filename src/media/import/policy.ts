/**
 * What an import URL may be, checked before any connection (synchronously, so the API answers
 * 400 at once) and again on every redirect: http(s) only, an allowed host, and, for a host
 * written as an IP address, a public one. Host names are checked on their resolved addresses
 * at connection time (download.ts).
 */
import { classifyAddress, inNetworks, isIpLiteral } from "./addresses.ts";
import { ImportError } from "./errors.ts";

export interface ImportPolicy {
  /** IMPORT_ALLOW_PRIVATE: also connect to loopback, private, link-local... addresses. */
  allowPrivate?: boolean;
  /** IMPORT_ALLOWED_HOSTS: when non-empty, only these host names (exact, case-insensitive). */
  allowedHosts?: readonly string[];
  /** IMPORT_ALLOWED_NETWORKS: non-public networks (CIDR) reachable anyway, e.g. a NAS's subnet. */
  allowedNetworks?: readonly string[];
}

const MAX_URL_LENGTH = 8192;

/** A URL's host without IPv6 brackets. */
export function bareHost(url: URL): string {
  return url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
}

/** Throws the ImportError that explains why `address` may not be connected to. */
export function checkAddress(address: string, policy: ImportPolicy, context: "source" | "redirect"): void {
  if (policy.allowPrivate) return;
  const found = classifyAddress(address);
  if (found.public || inNetworks(address, policy.allowedNetworks ?? [])) return;
  const what = context === "redirect" ? "redirect to" : "import from";
  throw new ImportError(
    "blocked_address",
    `${what.charAt(0).toUpperCase()}${what.slice(1)} ${found.description} is not allowed (${address}); the server allows public addresses only (IMPORT_ALLOW_PRIVATE, IMPORT_ALLOWED_NETWORKS)`,
  );
}

/**
 * Parses and checks an import URL; `context` words the message for a redirect's target.
 * Throws an ImportError (`invalid_url`, `host_not_allowed`, `blocked_address`).
 */
export function checkSourceUrl(raw: string | URL, policy: ImportPolicy, context: "source" | "redirect" = "source"): URL {
  let url: URL;
  const text = String(raw).trim();
  if (text.length > MAX_URL_LENGTH) throw new ImportError("invalid_url", `The URL is longer than ${MAX_URL_LENGTH} characters`);
  try {
    url = new URL(text);
  } catch {
    throw new ImportError("invalid_url", `Not a valid URL: ${JSON.stringify(text.slice(0, 200))}`);
  }
  // Checked again as stored and fetched: percent-encoding makes one `é` six characters, and an
  // import the API accepted must not then fail in the background for its length.
  if (url.href.length > MAX_URL_LENGTH) throw new ImportError("invalid_url", `The URL is longer than ${MAX_URL_LENGTH} characters once percent-encoded`);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    const where = context === "redirect" ? "A redirect to" : "Importing from";
    throw new ImportError(context === "redirect" ? "redirect" : "invalid_url", `${where} ${url.protocol.replace(/:$/, "")}: URLs is not supported; only http and https`);
  }
  const host = bareHost(url);
  if (!host) throw new ImportError("invalid_url", "The URL has no host");
  const allowed = policy.allowedHosts?.filter(Boolean) ?? [];
  if (allowed.length && !allowed.some((h) => h.toLowerCase() === host.toLowerCase())) {
    throw new ImportError("host_not_allowed", `${context === "redirect" ? "A redirect to" : "Importing from"} ${host} is not allowed; this server imports only from ${allowed.join(", ")} (IMPORT_ALLOWED_HOSTS)`);
  }
  if (isIpLiteral(host)) checkAddress(host, policy, context);
  return url;
}
