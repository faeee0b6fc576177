import { createHash } from 'node:crypto';
import * as z from 'zod';
import { ContractError } from './errors.js';
import type {
  BudgetOutcome,
  BudgetRequest,
  BudgetStore,
  RedisBudgetStoreOptions,
  RedisLike,
} from './types.js';

const optionsSchema = z.strictObject({
  client: z.custom<RedisLike>(
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      typeof (v as RedisLike).evalsha === 'function' &&
      typeof (v as RedisLike).eval === 'function',
    'client must be an ioredis client (with evalsha and eval)',
  ),
  prefix: z.string().max(200, 'prefix must be at most 200 characters').optional(),
});

// Atomic across every counter of one check: first every counter is tested, then all are spent, or none
// (ARGV[1] = 1), or none at all when only asked whether they have room (ARGV[1] = 0).
// Time comes from Redis, so replicas with skewed clocks still share one window; keys expire at its end.
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local windows = {}
local used = {}
for i = 1, n do
  local cost = tonumber(ARGV[3 * i - 1])
  local limit = tonumber(ARGV[3 * i])
  local win = tonumber(ARGV[3 * i + 1])
  local w = math.floor(now / win)
  local cur = redis.call('HMGET', KEYS[i], 'w', 'n')
  local u = 0
  if cur[1] and tonumber(cur[1]) == w then u = tonumber(cur[2]) end
  if u + cost > limit then
    return {0, i - 1, u, (w + 1) * win - now}
  end
  windows[i] = w
  used[i] = u
end
if ARGV[1] ~= '1' then return {1} end
for i = 1, n do
  local win = tonumber(ARGV[3 * i + 1])
  redis.call('HSET', KEYS[i], 'w', windows[i], 'n', used[i] + tonumber(ARGV[3 * i - 1]))
  redis.call('PEXPIREAT', KEYS[i], (windows[i] + 1) * win)
end
return {1}
`;
const SHA = createHash('sha1').update(SCRIPT).digest('hex');

function outcome(reply: unknown): BudgetOutcome {
  if (Array.isArray(reply) && reply[0] === 1) return { ok: true };
  if (
    Array.isArray(reply) &&
    reply[0] === 0 &&
    reply.length === 4 &&
    reply.every((x) => typeof x === 'number')
  ) {
    return { ok: false, index: reply[1] as number, used: reply[2] as number, resetInMs: reply[3] as number };
  }
  throw new Error('unexpected reply from the budget script');
}

/**
 * A budget store in Redis, shared by every replica and kept across restarts. Each check runs one Lua
 * script (sent once, then called by SHA) that tests and spends all of its counters atomically; counters
 * are hashes that expire when their window ends. Give it a client with a short `connectTimeout`; the
 * registry bounds every call with `budgetTimeoutMs` and denies with `budget_store_unavailable`.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createRedisBudgetStore, createRegistry, predefinedRoles } from '@amas/contracts';
 * const store = createRedisBudgetStore({ client: new Redis(process.env.REDIS_URL!) });
 * const registry = createRegistry({ contracts: predefinedRoles(), store });
 * ```
 */
export function createRedisBudgetStore(options: RedisBudgetStoreOptions): BudgetStore {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new ContractError('config_invalid', `createRedisBudgetStore: ${z.prettifyError(parsed.error)}`);
  }
  const { client } = options;
  const prefix = options.prefix ?? 'amas:contracts:';

  const run = async (spend: boolean, requests: readonly BudgetRequest[]): Promise<BudgetOutcome> => {
    const args: (string | number)[] = [];
    for (const r of requests) args.push(prefix + r.key);
    args.push(spend ? 1 : 0);
    for (const r of requests) args.push(r.cost, r.limit, r.windowMs);
    let reply: unknown;
    try {
      reply = await client.evalsha(SHA, requests.length, ...args);
    } catch (err) {
      if (!/NOSCRIPT/.test(String((err as Error)?.message))) throw err;
      reply = await client.eval(SCRIPT, requests.length, ...args);
    }
    return outcome(reply);
  };

  return {
    consume: (requests: readonly BudgetRequest[]) => run(true, requests),
    peek: (requests: readonly BudgetRequest[]) => run(false, requests),
  };
}
