/**
 * A least-recently-used map bounded by the bytes its values hold (each entry says its cost),
 * not by their number: clip headers range from a few hundred bytes to megabytes. Each entry is
 * also charged its key (clip keys run to hundreds of characters) and the Map's own overhead, so
 * many small entries cannot hold several times the bound (found in review: 64 MiB counted,
 * 220 MiB held, for cached refusals of distinct intervals).
 */
/** A Map entry and its record, beyond the key's characters and the value's stated cost. */
const ENTRY_OVERHEAD = 96;
export class ByteCache<V> {
  private readonly entries = new Map<string, { value: V; cost: number }>();
  private total = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    // Re-inserting moves it to the young end of the Map's insertion order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Stores `value` unless it alone exceeds the bound; evicts the least recently used to fit. */
  set(key: string, value: V, valueCost: number): void {
    this.delete(key);
    const cost = valueCost + 2 * key.length + ENTRY_OVERHEAD;
    if (cost > this.maxBytes) return;
    this.entries.set(key, { value, cost });
    this.total += cost;
    for (const [oldest, entry] of this.entries) {
      if (this.total <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.total -= entry.cost;
    }
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.total -= entry.cost;
  }

  /** Drops every key that starts with `prefix`. */
  forget(prefix: string): void {
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.delete(key);
  }
}
