import * as z from 'zod';
import { ContractError } from './errors.js';
import type { BudgetOutcome, BudgetRequest, BudgetStore, MemoryBudgetStoreOptions } from './types.js';

const optionsSchema = z.strictObject({
  maxKeys: z.int().min(1, 'maxKeys must be at least 1').optional(),
  now: z.function().optional(),
});

const OK: BudgetOutcome = Object.freeze({ ok: true });

interface Counter {
  window: number;
  used: number;
  expiresAt: number;
}

/**
 * A budget store in this process's memory: the default. Fast and exact for one process; counters are
 * lost on restart and not shared between replicas (use {@link createRedisBudgetStore} for that).
 *
 * @example
 * ```ts
 * import { createMemoryBudgetStore, createRegistry, predefinedRoles } from '@amas/contracts';
 * const registry = createRegistry({ contracts: predefinedRoles(), store: createMemoryBudgetStore({ maxKeys: 50_000 }) });
 * ```
 */
export function createMemoryBudgetStore(options: MemoryBudgetStoreOptions = {}): BudgetStore {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new ContractError('config_invalid', `createMemoryBudgetStore: ${z.prettifyError(parsed.error)}`);
  }
  const maxKeys = options.maxKeys ?? 100_000;
  const now = options.now ?? Date.now;
  // Two levels, so a check looks up a constant bucket string and the caller's own subject string,
  // and never builds (and hashes) a concatenated key.
  const buckets = new Map<string, Map<string, Counter>>();
  let size = 0;

  const sweep = (t: number) => {
    for (const [bucket, inner] of buckets) {
      for (const [subject, c] of inner) {
        if (c.expiresAt <= t) {
          inner.delete(subject);
          size--;
        }
      }
      if (inner.size === 0) buckets.delete(bucket);
    }
  };

  /** The first request without room, or undefined; fills `found` with the live counters when given. */
  const probe = (requests: readonly BudgetRequest[], t: number, found?: (Counter | undefined)[]) => {
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i]!;
      const window = Math.floor(t / r.windowMs);
      const c = buckets.get(r.bucket)?.get(r.subject);
      const used = c !== undefined && c.window === window ? c.used : 0;
      if (used + r.cost > r.limit) {
        return { ok: false, index: i, used, resetInMs: (window + 1) * r.windowMs - t } as const;
      }
      if (found) found[i] = c;
    }
    return undefined;
  };

  return {
    peek(requests: readonly BudgetRequest[]): BudgetOutcome {
      return probe(requests, now()) ?? OK;
    },
    consume(requests: readonly BudgetRequest[]): BudgetOutcome {
      const t = now();
      const n = requests.length;
      const found: (Counter | undefined)[] = new Array(n);
      const full = probe(requests, t, found);
      if (full) return full;
      let fresh = 0;
      for (let i = 0; i < n; i++) if (found[i] === undefined) fresh++;
      if (fresh > 0 && size + fresh > maxKeys) {
        sweep(t);
        if (size + fresh > maxKeys) throw new Error(`memory budget store is full (${maxKeys} counters)`);
        for (let i = 0; i < n; i++) found[i] = buckets.get(requests[i]!.bucket)?.get(requests[i]!.subject);
      }
      for (let i = 0; i < n; i++) {
        const r = requests[i]!;
        const window = Math.floor(t / r.windowMs);
        const c = found[i];
        if (c === undefined) {
          let inner = buckets.get(r.bucket);
          if (inner === undefined) {
            inner = new Map();
            buckets.set(r.bucket, inner);
          }
          inner.set(r.subject, { window, used: r.cost, expiresAt: (window + 1) * r.windowMs });
          size++;
        } else if (c.window === window) c.used += r.cost;
        else {
          c.window = window;
          c.used = r.cost;
          c.expiresAt = (window + 1) * r.windowMs;
        }
      }
      return OK;
    },
    async close() {
      buckets.clear();
      size = 0;
    },
  };
}
