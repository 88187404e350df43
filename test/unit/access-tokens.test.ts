import { describe, expect, test } from "bun:test";
import { SignJWT, UnsecuredJWT } from "jose";
import { PlaybackTokens, type TokenFailure } from "../../src/access/tokens.ts";

const SECRET = "unit-test-signing-secret-0123456789abcdef";
const key = new TextEncoder().encode(SECRET);
const NOW = 1_800_000_000_000;
const nowS = NOW / 1000;

/** A token made the way a customer's backend would, with any JWT library. */
async function selfMinted(claims: Record<string, unknown>, secret: Uint8Array = key, alg = "HS256"): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(secret);
}

const tamper = (token: string) => {
  const [h, p, s] = token.split(".");
  const payload = JSON.parse(Buffer.from(p!, "base64url").toString());
  payload.sub = "another";
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
};

describe("PlaybackTokens.check", () => {
  const tokens = new PlaybackTokens(SECRET, 100, () => NOW);
  const cases: [string, () => Promise<string | null>, TokenFailure | null][] = [
    ["a minted token for the video", async () => (await tokens.mint("vid1", 60)).token, null],
    ["a self-minted token (sub, exp)", () => selfMinted({ sub: "vid1", exp: nowS + 60 }), null],
    ["no token", async () => null, "token_missing"],
    ["an empty token", async () => "", "token_missing"],
    ["garbage", async () => "not-a-jwt", "token_malformed"],
    ["three dots of garbage", async () => "a.b.c", "token_malformed"],
    ["a very long token", async () => "x".repeat(5000), "token_malformed"],
    ["expired", () => selfMinted({ sub: "vid1", exp: nowS - 1 }), "token_expired"],
    ["expiring this very second", () => selfMinted({ sub: "vid1", exp: nowS }), "token_expired"],
    ["for another video", () => selfMinted({ sub: "vid2", exp: nowS + 60 }), "token_wrong_video"],
    ["signed with another secret", () => selfMinted({ sub: "vid1", exp: nowS + 60 }, new TextEncoder().encode("some-other-secret-0123456789abcdefgh")), "token_invalid"],
    ["tampered payload", async () => tamper(await selfMinted({ sub: "vid1", exp: nowS + 60 })), "token_invalid"],
    ["no exp", () => selfMinted({ sub: "vid1" }), "token_invalid"],
    ["no sub", () => selfMinted({ exp: nowS + 60 }), "token_invalid"],
    ["not yet valid (nbf)", () => selfMinted({ sub: "vid1", exp: nowS + 60, nbf: nowS + 30 }), "token_invalid"],
    // An unsecured JWT has an empty signature part: not the shape of an HS256 token at all.
    ["alg none", async () => new UnsecuredJWT({ sub: "vid1", exp: nowS + 60 }).encode(), "token_malformed"],
    // A valid token respelled: jose's base64url decoder would skip the whitespace and padding.
    ["a valid token with a space after it", async () => `${(await tokens.mint("vid1", 60)).token} `, "token_malformed"],
    ["a valid token with padding", async () => `${(await tokens.mint("vid1", 60)).token}==`, "token_malformed"],
    ["a valid token with a tab inside", async () => (await tokens.mint("vid1", 60)).token.replace(".", ".\t"), "token_malformed"],
    ["a valid token with a fourth part", async () => `${(await tokens.mint("vid1", 60)).token}.e30`, "token_malformed"],
    ["HS512 with the right secret", () => selfMinted({ sub: "vid1", exp: nowS + 60 }, key, "HS512"), "token_invalid"],
  ];
  test.each(cases)("%s → %p", async (_name, make, expected) => {
    const token = await make();
    expect(await tokens.check(token, "vid1")).toBe(expected);
    // Asked again (now from the cache when it verified), the answer is the same.
    expect(await tokens.check(token, "vid1")).toBe(expected);
  });
});

describe("a rotation: SIGNING_SECRET_PREVIOUS", () => {
  const PREVIOUS = "the-secret-before-the-rotation-0123456789";
  const previousKey = new TextEncoder().encode(PREVIOUS);
  const rotated = new PlaybackTokens([SECRET, PREVIOUS], 100, () => NOW);
  const cases: [string, () => Promise<string>, TokenFailure | null][] = [
    ["signed with the current secret", () => selfMinted({ sub: "vid1", exp: nowS + 60 }), null],
    ["signed with the previous one", () => selfMinted({ sub: "vid1", exp: nowS + 60 }, previousKey), null],
    ["signed with the previous one, expired", () => selfMinted({ sub: "vid1", exp: nowS - 1 }, previousKey), "token_expired"],
    ["signed with the previous one, for another video", () => selfMinted({ sub: "vid2", exp: nowS + 60 }, previousKey), "token_wrong_video"],
    ["signed with the previous one, tampered", async () => tamper(await selfMinted({ sub: "vid1", exp: nowS + 60 }, previousKey)), "token_invalid"],
    ["signed with the current one, expired", () => selfMinted({ sub: "vid1", exp: nowS - 1 }), "token_expired"],
    ["signed with neither", () => selfMinted({ sub: "vid1", exp: nowS + 60 }, new TextEncoder().encode("some-other-secret-0123456789abcdefgh")), "token_invalid"],
    ["signed with the previous one, without exp", () => selfMinted({ sub: "vid1" }, previousKey), "token_invalid"],
  ];
  test.each(cases)("%s → %p", async (_name, make, expected) => {
    expect(await rotated.check(await make(), "vid1")).toBe(expected);
  });

  test("new tokens are signed with the current secret only", async () => {
    const { token } = await rotated.mint("vid1", 60);
    expect(await new PlaybackTokens(SECRET, 100, () => NOW).check(token, "vid1")).toBeNull();
    expect(await new PlaybackTokens(PREVIOUS, 100, () => NOW).check(token, "vid1")).toBe("token_invalid");
  });

  test("without it, a token of the previous secret is refused (the rotation revokes)", async () => {
    expect(await new PlaybackTokens(SECRET, 100, () => NOW).check(await selfMinted({ sub: "vid1", exp: nowS + 60 }, previousKey), "vid1")).toBe("token_invalid");
  });
});

describe("the verification cache", () => {
  test("a token verified once is checked synchronously afterwards, and expires on time", async () => {
    let now = NOW;
    const tokens = new PlaybackTokens(SECRET, 100, () => now);
    const token = await selfMinted({ sub: "vid1", exp: nowS + 10 });
    expect(tokens.check(token, "vid1")).toBeInstanceOf(Promise);
    expect(await tokens.check(token, "vid1")).toBeNull();
    expect(tokens.check(token, "vid1")).toBeNull();
    expect(tokens.check(token, "vid2")).toBe("token_wrong_video");
    now += 10_000;
    expect(tokens.check(token, "vid1")).toBe("token_expired");
  });

  test("holds at most maxCached tokens, and an evicted one still verifies", async () => {
    const tokens = new PlaybackTokens(SECRET, 3, () => NOW);
    const minted = await Promise.all([1, 2, 3, 4].map((n) => selfMinted({ sub: "vid1", exp: nowS + 60, n })));
    for (const t of minted) expect(await tokens.check(t, "vid1")).toBeNull();
    // The first was dropped to make room for the fourth: verifying it again is a Promise.
    expect(tokens.check(minted[0]!, "vid1")).toBeInstanceOf(Promise);
    expect(tokens.check(minted[3]!, "vid1")).toBeNull();
    expect(await tokens.check(minted[0]!, "vid1")).toBeNull();
  });

  test("a minted token says what it is: HS256, sub, iat and exp", async () => {
    const tokens = new PlaybackTokens(SECRET, 10, () => NOW);
    const { token, expiresAt } = await tokens.mint("vid9", 3600);
    const [header, payload] = token.split(".").slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString()));
    expect(header).toEqual({ alg: "HS256", typ: "JWT" });
    expect(payload).toEqual({ sub: "vid9", iat: nowS, exp: nowS + 3600 });
    expect(expiresAt.getTime()).toBe(NOW + 3_600_000);
  });
});
