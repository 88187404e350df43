/** Which addresses an import may connect to, and which URLs it may start from (pure, table-driven). */
import { describe, expect, test } from "bun:test";
import { classifyAddress, inNetworks } from "../../src/media/import/addresses.ts";
import { ImportError } from "../../src/media/import/errors.ts";
import { checkSourceUrl } from "../../src/media/import/policy.ts";

const TABLE: [address: string, range: string, isPublic: boolean][] = [
  // Public
  ["8.8.8.8", "unicast", true],
  ["1.1.1.1", "unicast", true],
  ["2606:4700:4700::1111", "unicast", true],
  ["::ffff:8.8.8.8", "unicast", true],
  ["64:ff9b::808:808", "unicast", true], // NAT64 of a public address
  // Loopback
  ["127.0.0.1", "loopback", false],
  ["127.255.255.254", "loopback", false],
  ["::1", "loopback", false],
  // RFC 1918
  ["10.0.0.1", "private", false],
  ["172.16.0.1", "private", false],
  ["172.31.255.255", "private", false],
  ["192.168.1.1", "private", false],
  ["172.32.0.1", "unicast", true], // just outside 172.16/12
  // Link-local (cloud metadata lives here)
  ["169.254.169.254", "linkLocal", false],
  ["fe80::1", "linkLocal", false],
  // Unique-local fc00::/7
  ["fc00::1", "uniqueLocal", false],
  ["fdff:ffff::1", "uniqueLocal", false],
  // CGNAT 100.64/10
  ["100.64.0.1", "carrierGradeNat", false],
  ["100.127.255.255", "carrierGradeNat", false],
  ["100.128.0.1", "unicast", true],
  // 0.0.0.0/8 and ::
  ["0.0.0.0", "unspecified", false],
  ["0.1.2.3", "unspecified", false],
  ["::", "unspecified", false],
  // Multicast, broadcast
  ["224.0.0.1", "multicast", false],
  ["239.255.255.250", "multicast", false],
  ["ff02::1", "multicast", false],
  ["255.255.255.255", "broadcast", false],
  // Reserved, documentation, benchmarking
  ["240.0.0.1", "reserved", false],
  ["192.0.2.10", "reserved", false],
  ["198.51.100.1", "reserved", false],
  ["203.0.113.5", "reserved", false],
  ["198.18.0.1", "reserved", false],
  ["2001:db8::1", "reserved", false],
  // IPv6 forms of IPv4 addresses are judged as the IPv4 address
  ["::ffff:127.0.0.1", "loopback", false],
  ["::ffff:7f00:1", "loopback", false],
  ["::ffff:10.0.0.1", "private", false],
  ["::ffff:169.254.169.254", "linkLocal", false],
  ["::ffff:0:127.0.0.1", "loopback", false], // IPv4-translated (RFC 6145)
  ["64:ff9b::7f00:1", "loopback", false], // NAT64 (RFC 6052)
  ["64:ff9b::a9fe:a9fe", "linkLocal", false],
  ["2002:7f00:1::", "loopback", false], // 6to4 of 127.0.0.1
  ["2002:c0a8:101::1", "private", false], // 6to4 of 192.168.1.1
  ["::127.0.0.1", "loopback", false], // ipaddr.js reads the dotted form as IPv4-mapped
  ["::7f00:1", "reserved", false], // IPv4-compatible (deprecated): nothing public lives in ::/96
  ["::808:808", "reserved", false],
  ["2001::1", "teredo", false],
  ["fec0::1", "deprecatedSiteLocal", false],
];

describe("classifyAddress", () => {
  for (const [address, range, isPublic] of TABLE) {
    test(`${address} → ${range}${isPublic ? " (public)" : ""}`, () => {
      const found = classifyAddress(address);
      expect(found.range).toBe(range);
      expect(found.public).toBe(isPublic);
      expect(found.description).toMatch(isPublic ? /public/ : /^an? /);
    });
  }

  test("text that is not an address is refused", () => {
    for (const text of ["localhost", "example.com", "127.1", "0x7f000001", "1.2.3.4.5", "", "::g"]) expect(() => classifyAddress(text)).toThrow(TypeError);
  });
});

describe("inNetworks", () => {
  const TABLE: [address: string, networks: string[], inside: boolean][] = [
    ["127.0.0.1", ["127.0.0.1/32"], true],
    ["127.0.0.2", ["127.0.0.1/32"], false],
    ["127.0.0.2", ["127.0.0.1"], false],
    ["192.168.1.20", ["192.168.1.0/24"], true],
    ["::ffff:192.168.1.20", ["192.168.1.0/24"], true],
    ["fd00::5", ["fd00::/8"], true],
    ["fd00::5", ["10.0.0.0/8"], false],
    ["10.0.0.1", [], false],
  ];
  for (const [address, networks, inside] of TABLE) {
    test(`${address} in ${JSON.stringify(networks)}: ${inside}`, () => expect(inNetworks(address, networks)).toBe(inside));
  }
});

describe("checkSourceUrl", () => {
  const refused: [url: string, code: string, message: RegExp, policy?: object][] = [
    ["file:///etc/passwd", "invalid_url", /^Importing from file: URLs is not supported; only http and https$/],
    ["data:video/mp4;base64,AAAA", "invalid_url", /data: URLs is not supported/],
    ["ftp://example.com/a.mp4", "invalid_url", /ftp: URLs is not supported/],
    ["javascript:alert(1)", "invalid_url", /javascript: URLs is not supported/],
    ["", "invalid_url", /Not a valid URL/],
    ["example.com/a.mp4", "invalid_url", /Not a valid URL/],
    [`https://cdn.example.com/a.mp4?q=${"x".repeat(8200)}`, "invalid_url", /^The URL is longer than 8192 characters$/],
    // 1,431 characters as sent, 8,431 as stored and fetched.
    [`https://cdn.example.com/a.mp4?q=${"é".repeat(1400)}`, "invalid_url", /^The URL is longer than 8192 characters once percent-encoded$/],
    ["http://127.0.0.1/a.mp4", "blocked_address", /^Import from a loopback address is not allowed \(127\.0\.0\.1\)/],
    ["http://127.1/a.mp4", "blocked_address", /loopback/], // the URL parser makes it 127.0.0.1
    ["http://0x7f000001/a.mp4", "blocked_address", /loopback/],
    ["http://[::1]:8080/a.mp4", "blocked_address", /loopback/],
    ["http://[::ffff:10.0.0.1]/", "blocked_address", /private/],
    ["http://169.254.169.254/latest/meta-data/", "blocked_address", /link-local/],
    ["https://10.1.2.3/a.mp4", "blocked_address", /private address/],
    ["http://0.0.0.0:3000/", "blocked_address", /unspecified/],
    ["https://videos.example.com/a.mp4", "host_not_allowed", /videos\.example\.com is not allowed; this server imports only from cdn\.example\.com/, { allowedHosts: ["cdn.example.com"] }],
  ];
  for (const [url, code, message, policy] of refused) {
    test(`refuses ${JSON.stringify(url)} (${code})`, () => {
      let error: unknown;
      try {
        checkSourceUrl(url, policy ?? {});
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ImportError);
      expect((error as ImportError).code as string).toBe(code);
      expect((error as ImportError).message).toMatch(message);
      expect((error as ImportError).status).toBe(400);
    });
  }

  test("accepts http(s) URLs of host names and public addresses; the flag and the networks open private ones", () => {
    expect(checkSourceUrl("https://cdn.example.com/a.mp4", {}).href).toBe("https://cdn.example.com/a.mp4");
    expect(checkSourceUrl(" http://8.8.8.8/x ", {}).hostname).toBe("8.8.8.8");
    expect(checkSourceUrl("https://CDN.example.com/a.mp4", { allowedHosts: ["cdn.example.com"] }).hostname).toBe("cdn.example.com");
    expect(checkSourceUrl("http://127.0.0.1:8080/a.mp4", { allowPrivate: true }).port).toBe("8080");
    expect(checkSourceUrl("http://192.168.1.5/a.mp4", { allowedNetworks: ["192.168.1.0/24"] }).hostname).toBe("192.168.1.5");
  });
});
