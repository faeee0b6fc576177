interface Slot<V> {
  /** The whole token: a hit requires it to be equal to the token looked up. Empty: a free slot. */
  token: string;
  /** The token's key in the map, kept so that eviction neither slices nor hashes it again. */
  index: string;
  value: V | undefined;
  /** Set on every hit, cleared when the clock hand passes over the entry (second chance). */
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
 *
 * The entries sit in a ring of slots that is allocated once, up to `maxEntries`, and reused: an
 * insertion at the bound overwrites the slot the clock hand evicts instead of allocating one, and
 * eviction never iterates the `Map` (whose iteration from the start walks over the holes every
 * deletion leaves, until it is rehashed: with 10 000 entries that was thousands of steps per new
 * token).
 */
export class TokenCache<V> {
  private readonly index = new Map<string, Slot<V>>();
  private readonly ring: Slot<V>[] = [];
  /** Slots emptied by {@link TokenCache.delete}, reused before anything is evicted. */
  private readonly free: Slot<V>[] = [];
  private hand = 0;

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.index.size;
  }

  get(token: string): V | undefined {
    const slot = this.index.get(indexOf(token));
    if (slot === undefined || slot.token !== token) return undefined;
    slot.used = true;
    return slot.value;
  }

  set(token: string, value: V): void {
    const index = indexOf(token);
    const existing = this.index.get(index);
    if (existing !== undefined) {
      existing.token = token;
      existing.index = index;
      existing.value = value;
      existing.used = false;
      return;
    }
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.ring.length < this.maxEntries) {
        slot = { token, index, value, used: false };
        this.ring.push(slot);
        this.index.set(index, slot);
        return;
      }
      slot = this.evict();
    }
    slot.token = token;
    slot.index = index;
    slot.value = value;
    slot.used = false;
    this.index.set(index, slot);
  }

  delete(token: string): void {
    const index = indexOf(token);
    const slot = this.index.get(index);
    if (slot === undefined || slot.token !== token) return;
    this.index.delete(index);
    this.release(slot);
    this.free.push(slot);
  }

  clear(): void {
    this.index.clear();
    this.ring.length = 0;
    this.free.length = 0;
    this.hand = 0;
  }

  private release(slot: Slot<V>): void {
    slot.token = '';
    slot.index = '';
    slot.value = undefined;
    slot.used = false;
  }

  /**
   * Empties the slot under the clock hand that has not been used since the hand last passed.
   * Called only when every slot holds an entry. Bounded: every step either clears a flag or
   * evicts, so the hand moves at most once around the ring plus one slot.
   */
  private evict(): Slot<V> {
    const ring = this.ring;
    for (;;) {
      const slot = ring[this.hand] as Slot<V>;
      this.hand = this.hand + 1 === ring.length ? 0 : this.hand + 1;
      if (slot.used) {
        slot.used = false;
        continue;
      }
      this.index.delete(slot.index);
      this.release(slot);
      return slot;
    }
  }
}
