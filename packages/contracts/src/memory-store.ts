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

/** The counters of one bucket (one budget of one role), by subject. */
interface Bucket {
  readonly counters: Map<string, Counter>;
  /** A registry holds this bucket (see {@link MemoryCore.slot}): never dropped, even when empty. */
  pinned: boolean;
}

/** One budget of a tool, as the registry hands it to {@link MemoryCore.run}: its bucket is resolved once. */
export interface CounterSlot {
  readonly bucket: Bucket;
  readonly limit: number;
  readonly windowMs: number;
  /** Counted per session (true) or per principal (false). */
  readonly perSession: boolean;
}

/**
 * The registry's way into a memory store it recognises: the same counters as `consume` and `peek`, with
 * the same answers, but without building a request object per budget and per call.
 */
export interface MemoryCore {
  /** Resolves a budget's bucket once, at load. */
  slot(bucket: string, limit: number, windowMs: number, perSession: boolean): CounterSlot;
  /**
   * `consume` (spend) or `peek` over `slots`, skipping those whose cost is 0. Returns -1 when every slot
   * has room (and, with `spend`, all were spent, atomically); otherwise spends nothing and returns the
   * index of the first slot without room, with its counter in {@link used} and {@link resetInMs}.
   * Throws when the store is full, as `consume` does.
   */
  run(
    slots: readonly CounterSlot[],
    costs: readonly number[],
    principal: string | undefined,
    session: string | undefined,
    spend: boolean,
  ): number;
  /** Of the slot that had no room in the last {@link run}. */
  used: number;
  resetInMs: number;
}

const cores = new WeakMap<BudgetStore, MemoryCore>();

/** The fast path into a store made by {@link createMemoryBudgetStore} of this copy of the package. */
export function memoryCore(store: BudgetStore): MemoryCore | undefined {
  return cores.get(store);
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
  const buckets = new Map<string, Bucket>();
  let size = 0;

  const bucketOf = (name: string): Bucket => {
    let b = buckets.get(name);
    if (b === undefined) {
      b = { counters: new Map(), pinned: false };
      buckets.set(name, b);
    }
    return b;
  };

  const sweep = (t: number) => {
    for (const [name, b] of buckets) {
      for (const [subject, c] of b.counters) {
        if (c.expiresAt <= t) {
          b.counters.delete(subject);
          size--;
        }
      }
      if (b.counters.size === 0 && !b.pinned) buckets.delete(name);
    }
  };

  /** The first request without room, or undefined; fills `found` with the live counters when given. */
  const probe = (requests: readonly BudgetRequest[], t: number, found?: (Counter | undefined)[]) => {
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i]!;
      const window = Math.floor(t / r.windowMs);
      const c = buckets.get(r.bucket)?.counters.get(r.subject);
      const used = c !== undefined && c.window === window ? c.used : 0;
      if (used + r.cost > r.limit) {
        return { ok: false, index: i, used, resetInMs: (window + 1) * r.windowMs - t } as const;
      }
      if (found) found[i] = c;
    }
    return undefined;
  };

  /** Starts a counter at time `t` with `cost` spent. */
  const add = (b: Bucket, subject: string, cost: number, windowMs: number, t: number) => {
    const window = Math.floor(t / windowMs);
    b.counters.set(subject, { window, used: cost, expiresAt: (window + 1) * windowMs });
    size++;
  };

  /** Spends `cost` at time `t` on a counter a probe found, whose window may have ended. */
  const charge = (c: Counter, cost: number, windowMs: number, t: number) => {
    const window = Math.floor(t / windowMs);
    if (c.window === window) c.used += cost;
    else {
      c.window = window;
      c.used = cost;
      c.expiresAt = (window + 1) * windowMs;
    }
  };

  const store: BudgetStore = {
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
        for (let i = 0; i < n; i++) {
          found[i] = buckets.get(requests[i]!.bucket)?.counters.get(requests[i]!.subject);
        }
      }
      for (let i = 0; i < n; i++) {
        const r = requests[i]!;
        const c = found[i];
        if (c === undefined) add(bucketOf(r.bucket), r.subject, r.cost, r.windowMs, t);
        else charge(c, r.cost, r.windowMs, t);
      }
      return OK;
    },
    async close() {
      for (const [name, b] of buckets) {
        b.counters.clear();
        if (!b.pinned) buckets.delete(name);
      }
      size = 0;
    },
  };

  // The counters a run found, by slot index. No user code runs inside `run` after `now()`, so one array
  // per store is enough, even when a check starts another check from a getter; an entry is always
  // written by a run before that run reads it.
  const found: (Counter | undefined)[] = [];
  const subjectOf = (s: CounterSlot, principal: string | undefined, session: string | undefined) =>
    (s.perSession ? session : principal) as string;

  const core: MemoryCore = {
    slot(bucket, limit, windowMs, perSession) {
      const b = bucketOf(bucket);
      b.pinned = true;
      return { bucket: b, limit, windowMs, perSession };
    },
    run(slots, costs, principal, session, spend) {
      const t = now();
      const n = slots.length;
      let fresh = 0;
      for (let i = 0; i < n; i++) {
        const cost = costs[i]!;
        if (cost === 0) continue;
        const s = slots[i]!;
        const window = Math.floor(t / s.windowMs);
        const c = s.bucket.counters.get(subjectOf(s, principal, session));
        const used = c !== undefined && c.window === window ? c.used : 0;
        if (used + cost > s.limit) {
          core.used = used;
          core.resetInMs = (window + 1) * s.windowMs - t;
          return i;
        }
        found[i] = c;
        if (c === undefined) fresh++;
      }
      if (!spend) return -1;
      if (fresh > 0 && size + fresh > maxKeys) {
        sweep(t);
        if (size + fresh > maxKeys) throw new Error(`memory budget store is full (${maxKeys} counters)`);
        for (let i = 0; i < n; i++) {
          const s = slots[i]!;
          found[i] = s.bucket.counters.get(subjectOf(s, principal, session));
        }
      }
      for (let i = 0; i < n; i++) {
        const cost = costs[i]!;
        if (cost === 0) continue;
        const s = slots[i]!;
        const c = found[i];
        if (c === undefined) add(s.bucket, subjectOf(s, principal, session), cost, s.windowMs, t);
        else charge(c, cost, s.windowMs, t);
      }
      return -1;
    },
    used: 0,
    resetInMs: 0,
  };
  cores.set(store, core);
  return store;
}
