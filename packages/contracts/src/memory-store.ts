import * as z from 'zod';
import { ContractError } from './errors.js';
import type { BudgetOutcome, BudgetRequest, BudgetStore } from './types.js';

/** Options of {@link createMemoryBudgetStore}. */
export interface MemoryBudgetStoreOptions {
  /**
   * Most counters kept at once (default 100,000). When full and no window has ended, `consume` fails
   * (the check denies with `budget_store_unavailable`): forgetting a counter would hand its budget back.
   */
  readonly maxKeys?: number;
  /** The clock, in epoch milliseconds (default `Date.now`); tests move it. */
  readonly now?: () => number;
}

const optionsSchema = z.strictObject({
  maxKeys: z.int().min(1, 'maxKeys must be at least 1').optional(),
  now: z.function().optional(),
});

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
  const counters = new Map<string, Counter>();

  const sweep = (t: number) => {
    for (const [k, c] of counters) if (c.expiresAt <= t) counters.delete(k);
  };

  return {
    consume(requests: readonly BudgetRequest[]): BudgetOutcome {
      const t = now();
      const windows: number[] = [];
      for (let i = 0; i < requests.length; i++) {
        const r = requests[i]!;
        const window = Math.floor(t / r.windowMs);
        const c = counters.get(r.key);
        const used = c !== undefined && c.window === window ? c.used : 0;
        if (used + r.cost > r.limit)
          return { ok: false, index: i, used, resetInMs: (window + 1) * r.windowMs - t };
        windows.push(window);
      }
      let fresh = 0;
      for (const r of requests) if (!counters.has(r.key)) fresh++;
      if (counters.size + fresh > maxKeys) {
        sweep(t);
        if (counters.size + fresh > maxKeys)
          throw new Error(`memory budget store is full (${maxKeys} counters)`);
      }
      for (let i = 0; i < requests.length; i++) {
        const r = requests[i]!;
        const window = windows[i]!;
        const c = counters.get(r.key);
        if (c !== undefined && c.window === window) c.used += r.cost;
        else counters.set(r.key, { window, used: r.cost, expiresAt: (window + 1) * r.windowMs });
      }
      return { ok: true };
    },
    async close() {
      counters.clear();
    },
  };
}
