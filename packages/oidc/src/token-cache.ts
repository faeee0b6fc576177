interface Slot<V> {
  /** The whole token: a hit requires it to be equal to the token looked up. */
  readonly token: string;
  readonly value: V;
  /** Set on every hit, cleared when eviction passes over the entry (second chance). */
  used: boolean;
}

const INDEX_LENGTH = 32;

/**
 * The index of a token in the map: the last 32 characters of its signature. Hashing a fresh
 * 800-character header string costs more than everything else on the hit path; 32 characters of
 * a signature are as unique and cost 25 times less. Equality of the whole token is still required.
 */
function indexOf(token: string): string {
  return token.length > INDEX_LENGTH ? token.slice(-INDEX_LENGTH) : token;
}

/**
 * A bounded map from the exact token string to what its verification produced, evicting like an
 * LRU without reordering on hits: a hit only sets a flag, and eviction gives flagged entries a
 * second chance (the CLOCK approximation of LRU). A hit costs one `Map` lookup of a short index and
 * one string comparison.
 */
export class TokenCache<V> {
  private readonly entries = new Map<string, Slot<V>>();

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(token: string): V | undefined {
    const slot = this.entries.get(indexOf(token));
    if (slot === undefined || slot.token !== token) return undefined;
    slot.used = true;
    return slot.value;
  }

  set(token: string, value: V): void {
    const index = indexOf(token);
    this.entries.delete(index);
    while (this.entries.size >= this.maxEntries) this.evictOne();
    this.entries.set(index, { token, value, used: false });
  }

  delete(token: string): void {
    const index = indexOf(token);
    if (this.entries.get(index)?.token === token) this.entries.delete(index);
  }

  clear(): void {
    this.entries.clear();
  }

  private evictOne(): void {
    // Bounded: every pass clears a flag, so at most `size` entries move before one is evicted.
    for (const [index, slot] of this.entries) {
      this.entries.delete(index);
      if (!slot.used) return;
      slot.used = false;
      this.entries.set(index, slot);
    }
  }
}
