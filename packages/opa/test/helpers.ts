import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { freePort, type RedisServer, startRedis } from '../../../test/support/redis-server.js';

export { freePort, startRedis };
/** A real redis-server started for a test (the repository's shared starter). */
export type RedisProcess = RedisServer;

export const repoRoot = resolve(import.meta.dirname, '..', '..', '..');
export const rolesFile = resolve(repoRoot, 'policies', 'roles.json');
export const roleData = JSON.parse(readFileSync(rolesFile, 'utf8')) as Record<string, unknown>;

export interface TableCase {
  name: string;
  input: unknown;
  expected: 'allow' | 'deny' | 'escalate';
  reasons: string[];
  approval?: { approvers: string[]; ttl_seconds: number };
  roles?: 'fixture';
}
export const table = JSON.parse(
  readFileSync(resolve(repoRoot, 'policies', 'testdata', 'decision_table.json'), 'utf8'),
) as { cases: TableCase[]; fixture_roles: Record<string, unknown> };

export const fixtureData = { amas: { roles: table.fixture_roles } };

/** A real redis-server for one test file, with the ioredis clients its tests open on it. */
export interface TestRedis {
  /** `redis://127.0.0.1:<port>`, once the server has started (in `beforeAll`). */
  readonly url: string;
  /** Every client opened by {@link TestRedis.client} (and any a test adds): quit after the file. */
  readonly clients: Redis[];
  /** A new client on the server, quit after the file. */
  client(): Redis;
  /** A key prefix no other test shares: `<tag><random>:`. */
  prefix(): string;
}

/**
 * Starts a real redis-server for the calling test file (before its tests) and stops it after them,
 * quitting every client opened on it. Call it at the top of the file.
 *
 * @example
 * ```ts
 * const redis = useRedis('lim');
 * const store = () => createRedisApprovalStore({ redis: redis.client(), prefix: redis.prefix() });
 * ```
 */
export function useRedis(tag: string): TestRedis {
  let proc: RedisProcess | undefined;
  const clients: Redis[] = [];
  beforeAll(async () => {
    proc = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
    await proc?.stop();
  });
  const url = () => {
    if (!proc) throw new Error('redis-server is not started yet: use it inside a test or a hook');
    return proc.url;
  };
  return {
    get url() {
      return url();
    },
    clients,
    client() {
      const r = new Redis(url(), { maxRetriesPerRequest: 1 });
      clients.push(r);
      return r;
    },
    prefix: () => `${tag}${Math.random().toString(36).slice(2)}:`,
  };
}

/** Collects unhandled rejections while `run` executes, so a test can assert there were none. */
export async function collectUnhandled(run: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', onRejection);
  try {
    await run();
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    process.off('unhandledRejection', onRejection);
  }
  return seen;
}
