/**
 * A bounded LRU map from the exact token string to what its verification produced. A `Map` keeps
 * insertion order, so re-inserting on a hit makes the first key the least recently used one.
 * Token length is capped at 16000 characters by the options, below the length up to which V8 hashes
 * the whole string (longer strings would collide by length).
 */
export class TokenCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(token: string): V | undefined {
    const value = this.entries.get(token);
    if (value !== undefined) {
      this.entries.delete(token);
      this.entries.set(token, value);
    }
    return value;
  }

  set(token: string, value: V): void {
    this.entries.delete(token);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(token, value);
  }

  delete(token: string): void {
    this.entries.delete(token);
  }

  clear(): void {
    this.entries.clear();
  }
}
