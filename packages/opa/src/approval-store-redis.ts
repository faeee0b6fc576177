import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type {
  ApprovalAuditEntry,
  ApprovalCreateResult,
  ApprovalPrincipal,
  ApprovalRecord,
  ApprovalStore,
  ApprovalStoreResult,
} from './types.js';

// Every key of the store carries one hash tag, `{approvals}`, so that each script can read and write
// the record, the pending indexes and the counters in one atomic step, on Redis Cluster too (all of
// them live in one slot). Approvals are human-paced and bounded (maxRecords), so one slot is enough.
//
//   <prefix>{approvals}:approval:<id>          hash: the record (immutable JSON + mutable fields;
//                                              `sub` and, for a principal with an issuer, `iss`)
//   <prefix>{approvals}:approval:<id>:audit    list: audit entries
//   <prefix>{approvals}:pending                zset: pending ids by deadline (listPending)
//   <prefix>{approvals}:pending-by:<sha(sub)>  zset: the pending ids of a principal WITHOUT issuer (the limit)
//   <prefix>{approvals}:pending-by-iss:<sha([iss, sub])>
//                                              zset: the pending ids of a principal WITH an issuer
//   <prefix>{approvals}:dedupe:<sha(action)>   string: the pending id of (sub, action, approvers, ttl[, iss])
//   <prefix>{approvals}:records                zset: every record by purge time (the total bound)
//
// A principal is (iss, sub). The keys of principals without an issuer are those written before `iss`
// existed, so older records keep their index; a principal with an issuer gets keys of another shape,
// which no principal without one (whatever its sub) can reach. An absent `iss` travels to the scripts
// as '' (a valid `iss` is never empty).

const CREATE = `
local at = ARGV[7]
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', at)
local existing = redis.call('GET', KEYS[5])
if existing and redis.call('ZSCORE', KEYS[4], existing) then return {'existing', existing} end
if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[8]) then
  local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  return {'approval_limit', tonumber(first[2]) - tonumber(at)}
end
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', at)
if redis.call('ZCARD', KEYS[6]) >= tonumber(ARGV[9]) then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', at)
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if first[2] then return {'approval_store_full', tonumber(first[2]) - tonumber(at)} end
  return {'approval_store_full', 1000}
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'status', 'pending', 'expiresAt', ARGV[2], 'actionHash', ARGV[3], 'sub', ARGV[4])
if ARGV[13] ~= '' then redis.call('HSET', KEYS[1], 'iss', ARGV[13]) end
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[10])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[10])
if redis.call('PTTL', KEYS[4]) < tonumber(ARGV[11]) then redis.call('PEXPIRE', KEYS[4], ARGV[11]) end
redis.call('SET', KEYS[5], ARGV[10], 'PX', ARGV[11])
redis.call('ZADD', KEYS[6], ARGV[12], ARGV[10])
return {'created'}
`;

const DECIDE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'approval_not_found' end
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 'approval_already_decided' end
local at = tonumber(ARGV[1])
if at >= tonumber(redis.call('HGET', KEYS[1], 'expiresAt')) then return 'approval_expired' end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'decidedBy', ARGV[3], 'decidedAt', ARGV[1])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'decidedByIss', ARGV[9]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'expiresAt', ARGV[5]) end
redis.call('RPUSH', KEYS[2], ARGV[6])
local deadline = tonumber(redis.call('HGET', KEYS[1], 'expiresAt'))
local keep = deadline - at + tonumber(ARGV[7])
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('ZREM', KEYS[3], ARGV[8])
redis.call('ZREM', KEYS[4], ARGV[8])
redis.call('ZADD', KEYS[5], deadline + tonumber(ARGV[7]), ARGV[8])
return 'ok'
`;

const CONSUME = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'approval_not_found' end
local iss = redis.call('HGET', KEYS[1], 'iss') or ''
if redis.call('HGET', KEYS[1], 'actionHash') ~= ARGV[2] or redis.call('HGET', KEYS[1], 'sub') ~= ARGV[3] or iss ~= ARGV[5] then
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

// Drops one finished record (used, denied, or past its deadline) to make room; never a live one.
const EVICT = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[2])
  return 1
end
local status = redis.call('HGET', KEYS[1], 'status')
if (status == 'pending' or status == 'approved') and tonumber(redis.call('HGET', KEYS[1], 'expiresAt')) > tonumber(ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
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
  /** Key prefix, without `{` or `}` (the store adds its own hash tag). Default `amas:opa:`. */
  prefix?: string;
  /** How long a record is kept after its deadline, for audit, while there is room. Default 7 days. */
  retentionMs?: number;
  /**
   * Records kept at most, across every replica (pending, approved, and finished ones kept for audit).
   * When full, finished records are dropped oldest first; a new request is refused (503
   * `approval_unavailable`) only when every record is still live. Default 10,000.
   */
  maxRecords?: number;
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

const EVICT_SCAN = 200;

const sha = (text: string) => createHash('sha256').update(text).digest('base64url');

/** The key-shaping identity of a principal: its `sub` alone without issuer, else `[iss, sub]`. */
const principalIndex = (p: ApprovalPrincipal) =>
  p.iss === undefined ? `pending-by:${sha(p.sub)}` : `pending-by-iss:${sha(JSON.stringify([p.iss, p.sub]))}`;

// '' stands for "no issuer" in the scripts, so an empty `iss` must never reach them as one.
const badIss = (iss: unknown) => iss !== undefined && (typeof iss !== 'string' || iss === '');

/**
 * An {@link ApprovalStore} in Redis, shared by every replica. Requests are bound to the requester's
 * (`iss`, `sub`) pair, in the scripts themselves. Each state change is one Lua script
 * (compare-and-set), so an approval is used at most once even when replicas race, and the
 * per-principal limit of pending requests and the total bound (`maxRecords`) hold across replicas;
 * nothing approved is lost when the service restarts. Records are kept `retentionMs` after their
 * deadline for audit, as room allows. All keys share one hash tag, so it works on Redis Cluster.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * const store = createRedisApprovalStore({ redis: new Redis(process.env.REDIS_URL!) });
 * const enforcer = createEnforcer({ url, approvals: { store } });
 * ```
 */
export function createRedisApprovalStore(options: RedisApprovalStoreOptions): ApprovalStore {
  const redis = options?.redis;
  if (typeof redis?.eval !== 'function' || typeof redis?.hgetall !== 'function') {
    throw new TypeError('createRedisApprovalStore: option "redis" must be an ioredis client');
  }
  const prefix = options.prefix ?? 'amas:opa:';
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw new TypeError('createRedisApprovalStore: option "prefix" must be a string without "{" or "}"');
  }
  const retentionMs = options.retentionMs ?? 7 * 24 * 3600 * 1000;
  if (!Number.isInteger(retentionMs) || retentionMs < 0) {
    throw new TypeError('createRedisApprovalStore: option "retentionMs" must be an integer >= 0');
  }
  const maxRecords = options.maxRecords ?? 10_000;
  if (!Number.isInteger(maxRecords) || maxRecords < 1) {
    throw new TypeError('createRedisApprovalStore: option "maxRecords" must be a positive integer');
  }
  const base = `${prefix}{approvals}:`;
  const recordKey = (id: string) => `${base}approval:${id}`;
  const auditKey = (id: string) => `${base}approval:${id}:audit`;
  const pendingKey = `${base}pending`;
  const byPrincipalKey = (p: ApprovalPrincipal) => `${base}${principalIndex(p)}`;
  const allKey = `${base}records`;

  async function load(id: string): Promise<ApprovalRecord | undefined> {
    const [h, a] = await Promise.all([redis.hgetall(recordKey(id)), redis.lrange(auditKey(id), 0, -1)]);
    if (!h?.record) return undefined;
    const immutable = JSON.parse(h.record) as Immutable;
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
    const record: Record<string, unknown> = {
      ...immutable,
      status: h.status,
      expiresAt: Number(h.expiresAt),
      decidedBy: h.decidedBy,
      decidedByIss: h.decidedByIss,
      decidedAt: num(h.decidedAt),
      reason: h.reason,
      usedAt: num(h.usedAt),
      audit: a.map((e) => JSON.parse(e) as ApprovalAuditEntry),
    };
    for (const k of Object.keys(record)) if (record[k] === undefined) delete record[k];
    return Object.freeze(record) as unknown as ApprovalRecord;
  }

  async function evict(at: number): Promise<void> {
    const ids = await redis.zrange(allKey, 0, EVICT_SCAN - 1);
    await Promise.all(ids.map((id) => redis.eval(EVICT, 3, recordKey(id), auditKey(id), allKey, at, id)));
  }

  return {
    async create(record, limits): Promise<ApprovalCreateResult> {
      const max = limits?.maxPendingPerPrincipal;
      if (!Number.isInteger(max) || max < 1) throw new TypeError('maxPendingPerPrincipal must be >= 1');
      const immutable: Immutable = {
        id: record.id,
        path: record.path,
        input: record.input,
        actionHash: record.actionHash,
        principal:
          record.principal.iss === undefined
            ? { sub: record.principal.sub }
            : { sub: record.principal.sub, iss: record.principal.iss },
        ...(record.decisionId ? { decisionId: record.decisionId } : {}),
        approvers: record.approvers,
        ttlSeconds: record.ttlSeconds,
        createdAt: record.createdAt,
      };
      const sub = record.principal.sub;
      const iss = record.principal.iss;
      if (badIss(iss)) throw new TypeError('principal.iss must be a non-empty string when present');
      const pendingMs = Math.max(1, record.expiresAt - record.createdAt);
      const first = record.audit[0] ?? {
        at: record.createdAt,
        action: 'requested',
        by: sub,
        ...(iss !== undefined ? { iss } : {}),
      };
      // Without issuer: the key of the records written before `iss` existed; with one, a longer tuple.
      const tuple: unknown[] = [sub, record.actionHash, record.approvers, record.ttlSeconds];
      if (iss !== undefined) tuple.push(iss);
      const dedupe = sha(JSON.stringify(tuple));
      const run = async () =>
        (await redis.eval(
          CREATE,
          6,
          recordKey(record.id),
          auditKey(record.id),
          pendingKey,
          byPrincipalKey(record.principal),
          `${base}dedupe:${dedupe}`,
          allKey,
          JSON.stringify(immutable),
          record.expiresAt,
          record.actionHash,
          sub,
          JSON.stringify(first),
          pendingMs + retentionMs,
          record.createdAt,
          max,
          maxRecords,
          record.id,
          pendingMs,
          record.expiresAt + retentionMs,
          iss ?? '',
        )) as [string, (string | number)?];
      let r = await run();
      if (r[0] === 'approval_store_full') {
        await evict(record.createdAt);
        r = await run();
      }
      switch (r[0]) {
        case 'created':
          return { ok: true, record, created: true };
        case 'existing': {
          const existing = await load(String(r[1]));
          if (!existing) throw new Error('the pending approval request vanished');
          return { ok: true, record: existing, created: false };
        }
        case 'approval_limit':
        case 'approval_store_full':
          return { ok: false, code: r[0], retryAfterMs: Math.max(0, Number(r[1])) };
        default:
          throw new Error('duplicate approval id');
      }
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
      // The principal never changes once written, so reading it first is safe; it names the index key.
      const [sub, iss] = await redis.hmget(recordKey(id), 'sub', 'iss');
      if (sub === null || sub === undefined) return { ok: false, code: 'approval_not_found' };
      const entry: ApprovalAuditEntry = {
        at: change.at,
        action: change.status,
        by: change.by,
        ...(change.byIss !== undefined ? { iss: change.byIss } : {}),
        ...(change.reason !== undefined ? { reason: change.reason } : {}),
      };
      const r = String(
        await redis.eval(
          DECIDE,
          5,
          recordKey(id),
          auditKey(id),
          pendingKey,
          byPrincipalKey(iss ? { sub, iss } : { sub }),
          allKey,
          change.at,
          change.status,
          change.by,
          change.reason ?? '',
          change.expiresAt ?? '',
          JSON.stringify(entry),
          retentionMs,
          id,
          change.byIss ?? '',
        ),
      );
      if (r !== 'ok') return { ok: false, code: r as Extract<ApprovalStoreResult, { ok: false }>['code'] };
      const record = await load(id);
      return record ? { ok: true, record } : { ok: false, code: 'approval_not_found' };
    },
    async consume(id, use): Promise<ApprovalStoreResult> {
      if (badIss(use.iss)) return { ok: false, code: 'approval_mismatch' };
      const entry: ApprovalAuditEntry = {
        at: use.at,
        action: 'used',
        by: use.sub,
        ...(use.iss !== undefined ? { iss: use.iss } : {}),
      };
      const r = String(
        await redis.eval(
          CONSUME,
          2,
          recordKey(id),
          auditKey(id),
          use.at,
          use.actionHash,
          use.sub,
          JSON.stringify(entry),
          use.iss ?? '',
        ),
      );
      if (r !== 'ok') return { ok: false, code: r as Extract<ApprovalStoreResult, { ok: false }>['code'] };
      const record = await load(id);
      return record ? { ok: true, record } : { ok: false, code: 'approval_not_found' };
    },
  };
}
