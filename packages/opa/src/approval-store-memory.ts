import { samePrincipal } from './principal.js';
import type {
  ApprovalCreateResult,
  ApprovalPrincipal,
  ApprovalRecord,
  ApprovalStore,
  ApprovalStoreResult,
} from './types.js';

/**
 * Options of {@link createMemoryApprovalStore}.
 *
 * @example
 * ```ts
 * const options: MemoryApprovalStoreOptions = { maxRecords: 5_000, retentionMs: 3_600_000 };
 * ```
 */
export interface MemoryApprovalStoreOptions {
  /** Records kept at most (pending, approved, and finished ones kept for audit). Default 10,000. */
  maxRecords?: number;
  /** How long a record is kept after its deadline, for audit, while there is room. Default 24 hours. */
  retentionMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

// One key per principal, (iss, sub); a principal without iss has a key of its own, never shared with
// any issuer's principal of the same sub.
const principalKey = (p: ApprovalPrincipal) => JSON.stringify(p.iss === undefined ? [p.sub] : [p.sub, p.iss]);

const sameAction = (a: ApprovalRecord, b: ApprovalRecord) =>
  a.actionHash === b.actionHash &&
  samePrincipal(a.principal, b.principal) &&
  a.ttlSeconds === b.ttlSeconds &&
  a.approvers.length === b.approvers.length &&
  a.approvers.every((s, i) => s === b.approvers[i]);

/**
 * An {@link ApprovalStore} in process memory: for one replica and for tests. Approvals are lost on
 * restart; use {@link createRedisApprovalStore} for several replicas or to survive restarts.
 * Requests are bound to the requester's (`iss`, `sub`) pair. Bounded: at most
 * `maxPendingPerPrincipal` pending requests per principal (given by the approvals
 * workflow), and at most `maxRecords` records; when full, finished records (used, denied, or past
 * their deadline) are dropped oldest first, before their `retentionMs`, and a new request is refused
 * only when every record is still live (pending or approved and unexpired).
 *
 * @example
 * ```ts
 * const approvals = createApprovals({ store: createMemoryApprovalStore({ maxRecords: 5_000 }) });
 * ```
 */
export function createMemoryApprovalStore(options: MemoryApprovalStoreOptions = {}): ApprovalStore {
  const maxRecords = options.maxRecords ?? 10_000;
  const retentionMs = options.retentionMs ?? 24 * 3600 * 1000;
  const now = options.now ?? Date.now;
  if (!Number.isInteger(maxRecords) || maxRecords < 1) {
    throw new TypeError('createMemoryApprovalStore: option "maxRecords" must be a positive integer');
  }
  if (typeof retentionMs !== 'number' || !(retentionMs >= 0)) {
    throw new TypeError('createMemoryApprovalStore: option "retentionMs" must be a number >= 0');
  }
  const records = new Map<string, ApprovalRecord>();
  // principal key (iss, sub) -> ids of its pending requests (pruned lazily of decided and expired ones).
  const pendingBySub = new Map<string, Set<string>>();

  const live = (r: ApprovalRecord, at: number) =>
    (r.status === 'pending' || r.status === 'approved') && r.expiresAt > at;

  const drop = (id: string, r: ApprovalRecord) => {
    records.delete(id);
    const key = principalKey(r.principal);
    const set = pendingBySub.get(key);
    if (set?.delete(id) && set.size === 0) pendingBySub.delete(key);
  };

  // Frees room: first what is past its retention, then finished records oldest first (insertion order
  // is creation order), down to 90% of the bound so that a full store does not sweep on every create.
  const sweep = (at: number) => {
    const t = Math.max(at, now());
    for (const [id, r] of records) if (r.expiresAt + retentionMs <= t) drop(id, r);
    const target = Math.floor(maxRecords * 0.9);
    for (const [id, r] of records) {
      if (records.size <= target) break;
      if (!live(r, at)) drop(id, r);
    }
  };

  const pendingOf = (key: string, at: number): ApprovalRecord[] => {
    const set = pendingBySub.get(key);
    if (!set) return [];
    const out: ApprovalRecord[] = [];
    for (const id of set) {
      const r = records.get(id);
      if (r && r.status === 'pending' && r.expiresAt > at) out.push(r);
      else set.delete(id);
    }
    if (set.size === 0) pendingBySub.delete(key);
    return out;
  };

  const earliest = (rs: Iterable<ApprovalRecord>, at: number) => {
    let min = Number.POSITIVE_INFINITY;
    for (const r of rs) if (live(r, at)) min = Math.min(min, r.expiresAt);
    return Number.isFinite(min) ? min - at : 1_000;
  };

  return {
    // No await inside: one synchronous step, so nothing interleaves between the checks and the write.
    async create(record, limits): Promise<ApprovalCreateResult> {
      const max = limits?.maxPendingPerPrincipal;
      if (!Number.isInteger(max) || max < 1) throw new TypeError('maxPendingPerPrincipal must be >= 1');
      const at = record.createdAt;
      const key = principalKey(record.principal);
      const mine = pendingOf(key, at);
      const same = mine.find((r) => sameAction(r, record));
      if (same) return { ok: true, record: same, created: false };
      if (mine.length >= max) {
        return { ok: false, code: 'approval_limit', retryAfterMs: earliest(mine, at) };
      }
      if (records.size >= maxRecords) sweep(at);
      if (records.size >= maxRecords) {
        return { ok: false, code: 'approval_store_full', retryAfterMs: earliest(records.values(), at) };
      }
      if (records.has(record.id)) throw new Error('duplicate approval id');
      records.set(record.id, record);
      const set = pendingBySub.get(key) ?? new Set<string>();
      set.add(record.id);
      pendingBySub.set(key, set);
      return { ok: true, record, created: true };
    },
    async get(id) {
      return records.get(id);
    },
    async listPending(at, limit) {
      const out: ApprovalRecord[] = [];
      for (const r of records.values()) {
        if (r.status === 'pending' && r.expiresAt > at) out.push(r);
        if (out.length >= limit) break;
      }
      return out;
    },
    async decide(id, change): Promise<ApprovalStoreResult> {
      const r = records.get(id);
      if (!r) return { ok: false, code: 'approval_not_found' };
      if (r.status !== 'pending') return { ok: false, code: 'approval_already_decided' };
      if (change.at >= r.expiresAt) return { ok: false, code: 'approval_expired' };
      const next: ApprovalRecord = Object.freeze({
        ...r,
        status: change.status,
        decidedBy: change.by,
        ...(change.byIss !== undefined ? { decidedByIss: change.byIss } : {}),
        decidedAt: change.at,
        ...(change.reason !== undefined ? { reason: change.reason } : {}),
        expiresAt: change.expiresAt ?? r.expiresAt,
        audit: Object.freeze([
          ...r.audit,
          Object.freeze({
            at: change.at,
            action: change.status,
            by: change.by,
            ...(change.byIss !== undefined ? { iss: change.byIss } : {}),
            ...(change.reason !== undefined ? { reason: change.reason } : {}),
          }),
        ]),
      });
      records.set(id, next);
      const key = principalKey(r.principal);
      const set = pendingBySub.get(key);
      if (set?.delete(id) && set.size === 0) pendingBySub.delete(key);
      return { ok: true, record: next };
    },
    async consume(id, use): Promise<ApprovalStoreResult> {
      const r = records.get(id);
      if (!r) return { ok: false, code: 'approval_not_found' };
      // Binding first: someone else's id tells them nothing about its state.
      const who = use.iss === undefined ? { sub: use.sub } : { sub: use.sub, iss: use.iss };
      if (r.actionHash !== use.actionHash || !samePrincipal(r.principal, who))
        return { ok: false, code: 'approval_mismatch' };
      if (r.status === 'used') return { ok: false, code: 'approval_already_used' };
      if (r.status === 'pending') return { ok: false, code: 'approval_pending' };
      if (r.status === 'denied') return { ok: false, code: 'approval_denied' };
      if (use.at >= r.expiresAt) return { ok: false, code: 'approval_expired' };
      const next: ApprovalRecord = Object.freeze({
        ...r,
        status: 'used' as const,
        usedAt: use.at,
        audit: Object.freeze([
          ...r.audit,
          Object.freeze({
            at: use.at,
            action: 'used' as const,
            by: use.sub,
            ...(use.iss !== undefined ? { iss: use.iss } : {}),
          }),
        ]),
      });
      records.set(id, next);
      return { ok: true, record: next };
    },
  };
}
