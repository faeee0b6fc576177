import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isOidcError } from '../src/errors.js';
import { STRANGER_FAILURES_TO_PAUSE } from '../src/tenants.js';
import type { IssuerResolver, VerifierOptions } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, eventually, rejectsWith, sleep } from './helpers.js';
import { resolverVerifiers, tenantIssuers } from './tenants-fixture.js';

// A tenant store that is down must not be asked once per request: a failed resolver call is
// remembered for resolverCache.failureCooldown, as an outage (503 with Retry-After), never as a
// refusal. Only Date is faked (except where said): sockets, timers and abort signals run for real.

const START = Date.UTC(2030, 0, 1);
const at = (seconds: number) => vi.setSystemTime(START + seconds * 1000);

const { acme, globex } = await tenantIssuers('acme', 'globex');
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  at(0);
});
afterEach(() => {
  vi.useRealTimers();
});

const withResolver = resolverVerifiers({ jwks: { timeout: 0.2 } });

/** The error a verification rejects with. */
async function failure(
  promise: Promise<unknown>,
): Promise<{ code: string; status: number; headers: Record<string, string> }> {
  try {
    await promise;
  } catch (err) {
    expect(isOidcError(err)).toBe(true);
    return err as { code: string; status: number; headers: Record<string, string> };
  }
  throw new Error('expected the verification to fail');
}

/** A resolver failing in one way until `healthy` is set, counting its calls per issuer. */
function failingStore(kind: 'throw' | 'reject' | 'hang' | 'invalid answer') {
  const store = {
    calls: 0,
    healthy: false,
    resolver: (iss: string) => {
      store.calls++;
      if (store.healthy) return { issuer: iss };
      switch (kind) {
        case 'throw':
          throw new Error('tenant store down');
        case 'reject':
          return Promise.reject(new Error('tenant store down'));
        case 'hang':
          return new Promise<never>(() => {});
        case 'invalid answer':
          return { issuer: 'https://someone-else.test/' };
      }
    },
  };
  return store;
}

describe('a failing resolver is asked at most once per resolverCache.failureCooldown', () => {
  it.each(['throw', 'reject', 'hang', 'invalid answer'] as const)(
    'a resolver that fails (%s) is called once for concurrent and sequential requests within the cooldown, then again after it',
    async (kind) => {
      const store = failingStore(kind);
      const v = withResolver(store.resolver as IssuerResolver, { resolverCache: { failureCooldown: 5 } });
      const token = await acme.mint();
      const burst = await Promise.allSettled(Array.from({ length: 50 }, () => v.verify(token)));
      for (const r of burst)
        expect(r).toMatchObject({ status: 'rejected', reason: { code: 'discovery_failed', status: 503 } });
      expect(store.calls).toBe(1);
      for (const s of [0, 1, 2.5, 4.9]) {
        at(s);
        for (let i = 0; i < 20; i++) await rejectsWith(v.verify(token), 'discovery_failed', 503);
      }
      expect(store.calls).toBe(1);
      at(5);
      await rejectsWith(v.verify(token), 'discovery_failed', 503);
      expect(store.calls).toBe(2);
      store.healthy = true;
      at(9.9);
      await rejectsWith(v.verify(token), 'discovery_failed', 503);
      expect(store.calls).toBe(2);
      at(10);
      expect((await v.verify(token)).issuer).toBe(acme.issuer);
      expect(store.calls).toBe(3);
    },
  );

  it('answers a remembered failure with the same 503 and a Retry-After counting down to the end of the cooldown', async () => {
    const store = failingStore('throw');
    const v = withResolver(store.resolver, { resolverCache: { failureCooldown: 10 } });
    const token = await acme.mint();
    const first = await failure(v.verify(token));
    expect(first).toMatchObject({ code: 'discovery_failed', status: 503 });
    expect(first.headers['Retry-After']).toBe('10');
    at(4);
    const remembered = await failure(v.verify(token));
    expect(remembered).toMatchObject({ code: 'discovery_failed', status: 503 });
    expect(remembered.headers).toMatchObject({ 'Retry-After': '6', 'Cache-Control': 'no-store' });
    expect(remembered.headers['WWW-Authenticate']).toBeUndefined();
    at(9.5);
    expect((await failure(v.verify(token))).headers['Retry-After']).toBe('1');
    expect(store.calls).toBe(1);
  });

  it('defaults to 2 s', async () => {
    const store = failingStore('throw');
    const v = withResolver(store.resolver);
    const token = await acme.mint();
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    at(1.9);
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(store.calls).toBe(1);
    at(2);
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(store.calls).toBe(2);
  });

  it('counts the cooldown from the end of a call that timed out, not from its start', async () => {
    const store = failingStore('hang');
    const v = withResolver(store.resolver, { jwks: { timeout: 0.3 }, resolverCache: { failureCooldown: 5 } });
    const token = await acme.mint();
    const pending = v.verify(token);
    at(10); // the tenant store hangs while (faked) time passes; the call times out at 10
    await rejectsWith(pending, 'discovery_failed', 503);
    at(14);
    const remembered = await failure(v.verify(token));
    expect(remembered.headers['Retry-After']).toBe('1');
    expect(store.calls).toBe(1);
  });

  it('remembers a failure per issuer: another issuer is still asked, and verifies', async () => {
    let calls = 0;
    const v = withResolver((iss) => {
      calls++;
      if (iss === acme.issuer) throw new Error('shard of acme down');
      return iss === globex.issuer;
    });
    const down = await acme.mint();
    await rejectsWith(v.verify(down), 'discovery_failed', 503);
    await rejectsWith(v.verify(down), 'discovery_failed', 503);
    expect((await v.verify(await globex.mint())).issuer).toBe(globex.issuer);
    await rejectsWith(v.verify(await acme.mint({ iss: 'https://unknown.test/' })), 'issuer_mismatch', 401);
    expect(calls).toBe(3);
  });

  it('a refusal after the cooldown replaces the failure (401), and an acceptance ends it', async () => {
    let answer: 'fail' | 'refuse' | 'accept' = 'fail';
    let calls = 0;
    const v = withResolver(
      (iss) => {
        calls++;
        if (answer === 'fail') throw new Error('down');
        return answer === 'accept' ? { issuer: iss } : false;
      },
      { resolverCache: { failureCooldown: 2, refusalTtl: 5 } },
    );
    const token = await acme.mint();
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    answer = 'refuse';
    at(2);
    await rejectsWith(v.verify(token), 'issuer_mismatch', 401);
    at(3);
    await rejectsWith(v.verify(token), 'issuer_mismatch', 401); // the refusal is remembered
    expect(calls).toBe(2);
    answer = 'accept';
    at(7);
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    expect(calls).toBe(3);
  });

  it('keeps at most maxRefusals failures, forgetting the oldest first', async () => {
    let calls = 0;
    const v = withResolver(
      () => {
        calls++;
        throw new Error('down');
      },
      { resolverCache: { maxRefusals: 2, failureCooldown: 60 } },
    );
    const [a, b, c] = await Promise.all(
      ['a', 'b', 'c'].map((name) => acme.mint({ iss: `https://${name}.tenants.test/` })),
    );
    for (const t of [a, b, c]) await rejectsWith(v.verify(t as string), 'discovery_failed', 503);
    expect(calls).toBe(3);
    await rejectsWith(v.verify(c as string), 'discovery_failed', 503);
    await rejectsWith(v.verify(b as string), 'discovery_failed', 503);
    expect(calls).toBe(3);
    await rejectsWith(v.verify(a as string), 'discovery_failed', 503);
    expect(calls).toBe(4);
  });

  it('failureCooldown 0 remembers no failure (concurrent requests still share one call)', async () => {
    const store = failingStore('reject');
    const v = withResolver(store.resolver, { resolverCache: { failureCooldown: 0 } });
    const token = await acme.mint();
    await Promise.allSettled(Array.from({ length: 20 }, () => v.verify(token)));
    expect(store.calls).toBe(1);
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(store.calls).toBe(3);
  });
});

describe('an accepted issuer whose renewal fails', () => {
  it('keeps verifying until its lease expires, then fails closed without a call until the cooldown ends', async () => {
    let down = false;
    let calls = 0;
    const v = withResolver(
      (iss) => {
        calls++;
        if (down) throw new Error('down');
        return { issuer: iss };
      },
      { resolverCache: { ttl: 100, failureCooldown: 5 } },
    );
    const token = await acme.mint();
    await v.verify(token);
    down = true;
    at(97); // past 80 % of the ttl: the next request renews in the background, and fails
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    await eventually(() => calls === 2, 2000, 5);
    await sleep(20);
    at(99.9);
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    expect((await v.verify(await acme.mint())).issuer).toBe(acme.issuer);
    expect(calls).toBe(2);
    at(100); // the lease has expired and the renewal's failure (at 97) is still remembered
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(calls).toBe(2);
    down = false;
    at(102);
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    expect(calls).toBe(3);
  });
});

describe('on the real clock', () => {
  it('a hung resolver still times out when the garbage collector runs while it hangs', async () => {
    vi.useRealTimers();
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const store = failingStore('hang');
    const v = withResolver(store.resolver, { jwks: { timeout: 0.3 } });
    const tokens = await Promise.all(
      Array.from({ length: 4 }, (_, i) => acme.mint({ iss: `https://hung-${i}.tenants.test/` })),
    );
    const settled = Promise.allSettled(tokens.map((t) => v.verify(t)));
    for (let i = 0; i < 5; i++) {
      await sleep(20);
      gc();
    }
    let timer: NodeJS.Timeout | undefined;
    const results = await Promise.race([
      settled,
      new Promise<'hung'>((resolve) => {
        timer = setTimeout(() => resolve('hung'), 5000);
      }),
    ]);
    clearTimeout(timer);
    expect(results).not.toBe('hung');
    for (const r of results as PromiseSettledResult<unknown>[])
      expect(r).toMatchObject({ status: 'rejected', reason: { code: 'discovery_failed', status: 503 } });
    expect(store.calls).toBe(4);
  });

  it('a client retrying a failing issuer in a tight loop costs the tenant store about one call per cooldown', async () => {
    vi.useRealTimers();
    const store = failingStore('throw');
    const v = withResolver(store.resolver, { resolverCache: { failureCooldown: 0.3 } });
    const token = await acme.mint();
    const started = performance.now();
    let requests = 0;
    while (performance.now() - started < 1000) {
      await rejectsWith(v.verify(token), 'discovery_failed', 503);
      requests++;
      if (requests % 50 === 0) await sleep(1);
    }
    const elapsed = performance.now() - started;
    expect(requests).toBeGreaterThan(100);
    // About elapsed / 300 ms calls; generous, since the loop may stall on a busy machine.
    expect(store.calls).toBeGreaterThanOrEqual(2);
    expect(store.calls).toBeLessThanOrEqual(Math.ceil(elapsed / 300) + 1);
    store.healthy = true;
    await eventually(
      async () => (await v.verify(token).catch(() => undefined))?.issuer === acme.issuer,
      3000,
      20,
    );
  });
});

describe('options', () => {
  function problem(options: Partial<VerifierOptions>): string {
    try {
      createVerifier({ issuer: () => true, audience: AUDIENCE, ...options });
    } catch (err) {
      expect(isOidcError(err) && err.code).toBe('config_invalid');
      return (err as Error).message;
    }
    throw new Error('expected createVerifier to throw');
  }

  it('checks failureCooldown and maxPending once, naming the option', () => {
    expect(problem({ resolverCache: { failureCooldown: -1 } })).toContain(
      'resolverCache.failureCooldown: must not be negative',
    );
    expect(problem({ resolverCache: { failureCooldown: 301 } })).toContain(
      'resolverCache.failureCooldown: is in seconds and must be at most 300',
    );
    expect(problem({ resolverCache: { failureCooldown: '2' as unknown as number } })).toContain(
      'resolverCache.failureCooldown: must be a number of seconds',
    );
    expect(problem({ resolverCache: { maxPending: 0 } })).toContain(
      'resolverCache.maxPending: must be at least 1',
    );
    expect(problem({ resolverCache: { maxPending: 10_001 } })).toContain(
      'resolverCache.maxPending: must be at most 10000',
    );
    expect(problem({ resolverCache: { maxPending: 1.5 } })).toContain('resolverCache.maxPending:');
    expect(
      problem({
        issuer: 'https://login.test/',
        resolverCache: { maxPending: 8 },
      } as Partial<VerifierOptions>),
    ).toContain('resolverCache: only applies when issuer is a resolver function');
    expect(() =>
      withResolver(() => true, { resolverCache: { failureCooldown: 0, maxPending: 1 } }),
    ).not.toThrow();
  });
});

describe(`after ${STRANGER_FAILURES_TO_PAUSE} failed calls in a row for new issuers, none for failureCooldown`, () => {
  const invented = (n: number, from = 0) =>
    Promise.all(
      Array.from({ length: n }, (_, i) => acme.mint({ iss: `https://t${from + i}.invented.test/` })),
    );

  it('a flood of invented issuers asks a tenant store that is down at most 5 times per cooldown', async () => {
    const store = failingStore('throw');
    const v = withResolver(store.resolver, { resolverCache: { failureCooldown: 2 } });
    for (const token of await invented(100)) await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(store.calls).toBe(STRANGER_FAILURES_TO_PAUSE);
    const paused = await failure(v.verify((await invented(1, 500))[0] as string));
    expect(paused.headers['Retry-After']).toBe('2');
    at(2);
    for (const token of await invented(100, 100)) await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(store.calls).toBe(2 * STRANGER_FAILURES_TO_PAUSE);
  });

  it('an accepted tenant keeps verifying, new tokens included, while new issuers are paused', async () => {
    let down = false;
    const resolver = (iss: string) => {
      if (iss === globex.issuer) return { issuer: iss };
      if (down) throw new Error('tenant store down');
      return false;
    };
    const v = withResolver(resolver);
    expect((await v.verify(await globex.mint())).issuer).toBe(globex.issuer);
    down = true;
    for (const token of await invented(20)) await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect((await v.verify(await globex.mint({ sub: 'fresh' }))).subject).toBe('fresh');
  });

  it('counts only failures in a row: an answer (a refusal too) starts the count again', async () => {
    let calls = 0;
    const resolver = (iss: string) => {
      calls++;
      if (iss.includes('.refused.')) return false;
      throw new Error('tenant store down');
    };
    const v = withResolver(resolver);
    const n = STRANGER_FAILURES_TO_PAUSE;
    const fail = await invented(2 * n + 1);
    const refusal = await acme.mint({ iss: 'https://x.refused.test/' });
    for (const token of fail.slice(0, n - 1)) await rejectsWith(v.verify(token), 'discovery_failed', 503);
    await rejectsWith(v.verify(refusal), 'issuer_mismatch', 401);
    // n - 1 failures, an answer, then n failures: only the last n are in a row, and they pause.
    for (const token of fail.slice(n - 1, 2 * n - 1))
      await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(calls).toBe(2 * n);
    await rejectsWith(v.verify(fail[2 * n] as string), 'discovery_failed', 503);
    expect(calls).toBe(2 * n);
  });

  it('failureCooldown: 0 turns the pause off along with the per-issuer memory', async () => {
    const store = failingStore('throw');
    const v = withResolver(store.resolver, { resolverCache: { failureCooldown: 0 } });
    for (const token of await invented(20)) await rejectsWith(v.verify(token), 'discovery_failed', 503);
    expect(store.calls).toBe(20);
  });
});
