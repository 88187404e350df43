/** Dependency-free so the autocannon runner (bundled for Node) and the k6 scripts can import it. */
/**
 * Park–Miller "minimal standard" PRNG (multiplier 48271, modulus 2^31-1). The same sequence is
 * produced by bench/wrk/ranges.lua, the autocannon runner and the k6 scripts, so every generator
 * requests the same ranges for the same seed. All products stay below 2^53, exact in doubles.
 */
export class ParkMiller {
  private state: number;
  constructor(seed: number) {
    this.state = (Math.abs(Math.floor(seed)) % 2147483646) + 1;
  }
  next(): number {
    this.state = (this.state * 48271) % 2147483647;
    return this.state;
  }
  /** Uniform integer in [0, span), built from two draws so spans above 2^31 (8 GiB files) stay fine. */
  below(span: number): number {
    const hi = this.next() - 1;
    const lo = this.next() - 1;
    const u = (hi + lo / 2147483646) / 2147483646;
    return Math.min(span - 1, Math.floor(u * span));
  }
}
