/**
 * Which IP addresses an import may connect to: public unicast only, unless the server is told
 * otherwise (IMPORT_ALLOW_PRIVATE). Pure, so it is tested table-driven
 * (test/unit/import-addresses.test.ts).
 *
 * The special-purpose registries (RFC 6890 and successors) come from ipaddr.js's `range()`;
 * this module only decides which of its ranges are reachable-in-public and looks through the
 * IPv6 forms that carry an IPv4 address (mapped, translated, NAT64, 6to4), so `::ffff:127.0.0.1`
 * or `64:ff9b::a00:1` is judged as the IPv4 address it leads to.
 */
import ipaddr from "ipaddr.js";

export interface AddressClass {
  /** The address as parsed, normalized (IPv4-mapped forms shown as IPv6). */
  address: string;
  /** ipaddr.js's range name of the address finally judged ("unicast" for public). */
  range: string;
  /** Whether an import may connect to it without IMPORT_ALLOW_PRIVATE. */
  public: boolean;
  /** For a non-public address: "a loopback address", "a private address"... */
  description: string;
}

const DESCRIPTIONS: Record<string, string> = {
  unspecified: "an unspecified address",
  broadcast: "a broadcast address",
  multicast: "a multicast address",
  linkLocal: "a link-local address",
  loopback: "a loopback address",
  carrierGradeNat: "a shared (carrier-grade NAT) address",
  private: "a private address",
  uniqueLocal: "a unique-local address",
  deprecatedSiteLocal: "a site-local address",
  teredo: "a Teredo tunnel address",
};

/** 2002:AABB:CCDD::/16 carries the IPv4 address AA.BB.CC.DD in bits 16-47. */
function sixToFourTarget(v6: ipaddr.IPv6): ipaddr.IPv4 {
  const [, hi, lo] = v6.parts as [number, number, number];
  return new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
}

/** The last 32 bits (NAT64 64:ff9b::/96, IPv4-translated ::ffff:0:a.b.c.d). */
function lastFourBytes(v6: ipaddr.IPv6): ipaddr.IPv4 {
  const hi = v6.parts[6]!;
  const lo = v6.parts[7]!;
  return new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
}

/**
 * Classifies an IP address literal (no brackets, no zone id). Throws a TypeError for text that
 * is not an IPv4 or IPv6 address.
 */
export function classifyAddress(text: string): AddressClass {
  if (!ipaddr.isValid(text) || (!text.includes(":") && !ipaddr.IPv4.isValidFourPartDecimal(text))) {
    // Only dotted-quad IPv4: "127.1" or "0x7f000001" are addresses to inet_aton, never DNS answers
    // (and URLs are normalized to dotted quads before they get here).
    throw new TypeError(`not an IP address: ${text}`);
  }
  const parsed = ipaddr.parse(text);
  let judged: ipaddr.IPv4 | ipaddr.IPv6 = parsed;
  if (parsed.kind() === "ipv6") {
    const v6 = parsed as ipaddr.IPv6;
    const range = v6.range();
    if (range === "ipv4Mapped") judged = v6.toIPv4Address();
    else if (range === "rfc6145") judged = lastFourBytes(v6);
    else if (range === "rfc6052" && v6.parts[0] === 0x64 && v6.parts[1] === 0xff9b && v6.parts[2] === 0) judged = lastFourBytes(v6);
    else if (range === "6to4") judged = sixToFourTarget(v6);
  }
  let range: string = judged.range();
  // ::a.b.c.d ("IPv4-compatible", deprecated by RFC 4291) is not in the registry ipaddr.js
  // follows; nothing public lives in ::/96.
  if (judged.kind() === "ipv6" && range === "unicast" && (judged as ipaddr.IPv6).parts.slice(0, 6).every((p) => p === 0)) range = "reserved";
  const isPublic = range === "unicast";
  return {
    address: parsed.toString(),
    range,
    public: isPublic,
    description: isPublic ? "a public address" : (DESCRIPTIONS[range] ?? "a reserved address"),
  };
}

/** Whether `text` is an IP address literal (as in a URL's host, brackets removed). */
export function isIpLiteral(text: string): boolean {
  return ipaddr.isValid(text);
}

/** Parses "10.0.0.0/8" or "fd00::/8" (a bare address means just it); throws a TypeError otherwise. */
export function parseNetwork(text: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  const trimmed = text.trim();
  if (!trimmed.includes("/")) {
    const addr = ipaddr.parse(trimmed);
    return [addr, addr.kind() === "ipv4" ? 32 : 128];
  }
  return ipaddr.parseCIDR(trimmed);
}

/** Whether `address` lies in one of `networks` (CIDR text); IPv4-mapped IPv6 counts as its IPv4. */
export function inNetworks(address: string, networks: readonly string[]): boolean {
  if (!networks.length || !ipaddr.isValid(address)) return false;
  const addr = ipaddr.process(address);
  return networks.some((text) => {
    const [net, bits] = parseNetwork(text);
    return net.kind() === addr.kind() && addr.match(net, bits);
  });
}
