import type { Redis } from 'ioredis';
import type { ApprovalAuditEntry, ApprovalRecord, ApprovalStore, ApprovalStoreResult } from './types.js';

// Every script touches only the two keys of one approval, which share a hash tag, so the store
// also works on Redis Cluster. The pending index is updated outside the scripts and is only a hint:
// listPending re-reads each record.

const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'status', 'pending', 'expiresAt', ARGV[2], 'actionHash', ARGV[3], 'sub', ARGV[4])
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 'ok'
`;

const DECIDE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'approval_not_found' end
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 'approval_already_decided' end
local at = tonumber(ARGV[1])
if at >= tonumber(redis.call('HGET', KEYS[1], 'expiresAt')) then return 'approval_expired' end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'decidedBy', ARGV[3], 'decidedAt', ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'expiresAt', ARGV[5]) end
redis.call('RPUSH', KEYS[2], ARGV[6])
local keep = tonumber(redis.call('HGET', KEYS[1], 'expiresAt')) - at + tonumber(ARGV[7])
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return 'ok'
`;

const CONSUME = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'approval_not_found' end
if redis.call('HGET', KEYS[1], 'actionHash') ~= ARGV[2] or redis.call('HGET', KEYS[1], 'sub') ~= ARGV[3] then
  return 'approval_mismatch'
end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'used' then return 'approval_already_used' end
if status == 'pending' then return 'approval_pending' end
if status == 'denied' then return 'approval_denied' end
if status ~= 'approved' then return 'approval_not_found' end
if tonumber(ARGV[1]) >= tonumber(redis.call('HGET', KEYS[1], 'expiresAt')) then return 'approval_expired' end
redis.call('HSET', KEYS[1], 'status', 'used', 'usedAt', ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[4])
return 'ok'
`;

/**
 * Options of {@link createRedisApprovalStore}.
 *
 * @example
 * ```ts
 * const options: RedisApprovalStoreOptions = { redis: new Redis(), prefix: 'gw:', retentionMs: 86_400_000 };
 * ```
 */
export interface RedisApprovalStoreOptions {
  /** Your ioredis client (ioredis 5 or 6). The store never closes it. */
  redis: Redis;
  /** Key prefix. Default `amas:opa:`. */
  prefix?: string;
  /** How long a record is kept after its deadline, for audit. Default 7 days. */
  retentionMs?: number;
}

type Immutable = Pick<
  ApprovalRecord,
  | 'id'
  | 'path'
  | 'input'
  | 'actionHash'
  | 'principal'
  | 'decisionId'
  | 'approvers'
  | 'ttlSeconds'
  | 'createdAt'
>;

/**
 * An {@link ApprovalStore} in Redis, shared by every replica. Each state change is one Lua script
 * (compare-and-set), so an approval is used at most once even when replicas race; nothing approved
 * is lost when the service restarts. Records are kept `retentionMs` after their deadline for audit.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * const store = createRedisApprovalStore({ redis: new Redis(process.env.REDIS_URL!) });
 * const enforcer = createEnforcer({ url, approvals: { store } });
 * ```
 */
export function createRedisApprovalStore(options: RedisApprovalStoreOptions): ApprovalStore {
  const redis = options.redis;
  if (typeof redis?.eval !== 'function' || typeof redis?.hgetall !== 'function') {
    throw new TypeError('createRedisApprovalStore: option "redis" must be an ioredis client');
  }
  const prefix = options.prefix ?? 'amas:opa:';
  const retentionMs = options.retentionMs ?? 7 * 24 * 3600 * 1000;
  const keys = (id: string) => [`${prefix}approval:{${id}}`, `${prefix}approval:{${id}}:audit`];
  const pendingKey = `${prefix}approvals:pending`;

  async function load(id: string): Promise<ApprovalRecord | undefined> {
    const [hashKey, auditKey] = keys(id) as [string, string];
    const [h, a] = await Promise.all([redis.hgetall(hashKey), redis.lrange(auditKey, 0, -1)]);
    if (!h?.record) return undefined;
    const base = JSON.parse(h.record) as Immutable;
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    const record: Record<string, unknown> = {
      ...base,
      status: h.status,
      expiresAt: Number(h.expiresAt),
      decidedBy: h.decidedBy,
      decidedAt: num(h.decidedAt),
      reason: h.reason,
      usedAt: num(h.usedAt),
      audit: a.map((e) => JSON.parse(e) as ApprovalAuditEntry),
    };
    for (const k of Object.keys(record)) if (record[k] === undefined) delete record[k];
    return Object.freeze(record) as unknown as ApprovalRecord;
  }

  async function run(script: string, id: string, args: (string | number)[]): Promise<string> {
    return String(await redis.eval(script, 2, ...keys(id), ...args));
  }

  return {
    async create(record) {
      const immutable: Immutable = {
        id: record.id,
        path: record.path,
        input: record.input,
        actionHash: record.actionHash,
        principal: record.principal,
        ...(record.decisionId ? { decisionId: record.decisionId } : {}),
        approvers: record.approvers,
        ttlSeconds: record.ttlSeconds,
        createdAt: record.createdAt,
      };
      const keep = record.expiresAt - record.createdAt + retentionMs;
      const first = record.audit[0] ?? {
        at: record.createdAt,
        action: 'requested',
        by: record.principal.sub,
      };
      const r = await run(CREATE, record.id, [
        JSON.stringify(immutable),
        record.expiresAt,
        record.actionHash,
        record.principal.sub,
        JSON.stringify(first),
        keep,
      ]);
      if (r !== 'ok') throw new Error('duplicate approval id');
      await redis.zadd(pendingKey, record.expiresAt, record.id);
    },
    get: load,
    async listPending(at, limit) {
      await redis.zremrangebyscore(pendingKey, '-inf', at);
      const ids = await redis.zrangebyscore(pendingKey, `(${at}`, '+inf', 'LIMIT', 0, limit);
      const records = await Promise.all(ids.map((id) => load(id)));
      const out: ApprovalRecord[] = [];
      for (const [i, r] of records.entries()) {
        if (r && r.status === 'pending' && r.expiresAt > at) out.push(r);
        else await redis.zrem(pendingKey, ids[i] as string);
      }
      return out.sort((x, y) => x.createdAt - y.createdAt);
    },
    async decide(id, change): Promise<ApprovalStoreResult> {
      const entry: ApprovalAuditEntry = {
        at: change.at,
        action: change.status,
        by: change.by,
        ...(change.reason !== undefined ? { reason: change.reason } : {}),
      };
      const r = await run(DECIDE, id, [
        change.at,
        change.status,
        change.by,
        change.reason ?? '',
        change.expiresAt ?? '',
        JSON.stringify(entry),
        retentionMs,
      ]);
      if (r !== 'ok') return { ok: false, code: r as Extract<ApprovalStoreResult, { ok: false }>['code'] };
      await redis.zrem(pendingKey, id);
      const record = await load(id);
      return record ? { ok: true, record } : { ok: false, code: 'approval_not_found' };
    },
    async consume(id, use): Promise<ApprovalStoreResult> {
      const entry: ApprovalAuditEntry = { at: use.at, action: 'used', by: use.sub };
      const r = await run(CONSUME, id, [use.at, use.actionHash, use.sub, JSON.stringify(entry)]);
      if (r !== 'ok') return { ok: false, code: r as Extract<ApprovalStoreResult, { ok: false }>['code'] };
      const record = await load(id);
      return record ? { ok: true, record } : { ok: false, code: 'approval_not_found' };
    },
  };
}
