/**
 * A bounded TTL cache (least recently used entries go first) and a table of in-flight requests,
 * so that concurrent identical queries share one OPA request.
 *
 * @example
 * ```ts
 * const cache = createDecisionCache<Decision>({ ttlMs: 1000, maxEntries: 10_000 });
 * const d = cache.get(key) ?? (await cache.coalesce(key, () => askOpa()));
 * ```
 */
export interface DecisionCache<V> {
  get(key: string): V | undefined;
  set(key: string, value: V): void;
  /** Runs `load` once for concurrent callers with the same key. */
  coalesce(key: string, load: () => Promise<V>): Promise<V>;
  readonly size: number;
  clear(): void;
}

/**
 * Creates a {@link DecisionCache}. With `ttlMs: 0` nothing is stored (coalescing still works).
 *
 * @example
 * ```ts
 * const cache = createDecisionCache<string>({ ttlMs: 500, maxEntries: 100 });
 * ```
 */
export function createDecisionCache<V>(options: {
  ttlMs: number;
  maxEntries: number;
  now?: () => number;
}): DecisionCache<V> {
  const now = options.now ?? Date.now;
  const entries = new Map<string, { value: V; expires: number }>();
  const inflight = new Map<string, Promise<V>>();

  return {
    get(key) {
      const e = entries.get(key);
      if (e === undefined) return undefined;
      if (e.expires <= now()) {
        entries.delete(key);
        return undefined;
      }
      // Re-insert to mark as most recently used.
      entries.delete(key);
      entries.set(key, e);
      return e.value;
    },
    set(key, value) {
      if (options.ttlMs <= 0) return;
      entries.delete(key);
      entries.set(key, { value, expires: now() + options.ttlMs });
      while (entries.size > options.maxEntries) {
        const oldest = entries.keys().next().value as string;
        entries.delete(oldest);
      }
    },
    coalesce(key, load) {
      const pending = inflight.get(key);
      if (pending) return pending;
      const p = load().finally(() => inflight.delete(key));
      inflight.set(key, p);
      return p;
    },
    get size() {
      return entries.size;
    },
    clear() {
      entries.clear();
    },
  };
}
