/**
 * Property-test settings shared by the fast-check suites. The seed is fixed so a run is
 * reproducible (set FC_SEED to explore others); on failure fast-check prints the seed and the
 * shrunk counterexample's path, which replays it: fc.assert(..., { seed, path }).
 */
import fc from "fast-check";

export const PROPERTY_SEED = Number(process.env.FC_SEED ?? 20_261_130);

export function holds(property: fc.IProperty<any>, numRuns: number): void {
  fc.assert(property, { seed: PROPERTY_SEED, numRuns });
}

/** Optional whitespace (SP and HTAB) as a list may have around its elements. */
export function ows(): fc.Arbitrary<string> {
  return fc.constantFrom("", "", "", " ", "\t", "  ", " \t");
}
