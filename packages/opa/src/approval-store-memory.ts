import type { ApprovalRecord, ApprovalStore, ApprovalStoreResult } from './types.js';

/**
 * An {@link ApprovalStore} in process memory: for one replica and for tests. Approvals are lost on
 * restart; use {@link createRedisApprovalStore} for several replicas or to survive restarts.
 * Bounded: records are dropped `retentionMs` after their deadline, and `create` refuses new requests
 * once `maxRecords` live records exist.
 *
 * @example
 * ```ts
 * const approvals = createApprovals({ store: createMemoryApprovalStore({ maxRecords: 5_000 }) });
 * ```
 */
export function createMemoryApprovalStore(
  options: { maxRecords?: number; retentionMs?: number; now?: () => number } = {},
): ApprovalStore {
  const maxRecords = options.maxRecords ?? 10_000;
  const retentionMs = options.retentionMs ?? 24 * 3600 * 1000;
  const now = options.now ?? Date.now;
  const records = new Map<string, ApprovalRecord>();

  const sweep = () => {
    const t = now();
    for (const [id, r] of records) if (r.expiresAt + retentionMs <= t) records.delete(id);
  };

  return {
    async create(record) {
      if (records.size >= maxRecords) sweep();
      if (records.size >= maxRecords) throw new Error('memory approval store is full');
      if (records.has(record.id)) throw new Error('duplicate approval id');
      records.set(record.id, record);
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
        decidedAt: change.at,
        ...(change.reason !== undefined ? { reason: change.reason } : {}),
        expiresAt: change.expiresAt ?? r.expiresAt,
        audit: Object.freeze([
          ...r.audit,
          Object.freeze({
            at: change.at,
            action: change.status,
            by: change.by,
            ...(change.reason !== undefined ? { reason: change.reason } : {}),
          }),
        ]),
      });
      records.set(id, next);
      return { ok: true, record: next };
    },
    async consume(id, use): Promise<ApprovalStoreResult> {
      const r = records.get(id);
      if (!r) return { ok: false, code: 'approval_not_found' };
      // Binding first: someone else's id tells them nothing about its state.
      if (r.actionHash !== use.actionHash || r.principal.sub !== use.sub)
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
          Object.freeze({ at: use.at, action: 'used' as const, by: use.sub }),
        ]),
      });
      records.set(id, next);
      return { ok: true, record: next };
    },
  };
}
