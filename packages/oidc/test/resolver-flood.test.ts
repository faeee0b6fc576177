import express from 'express';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isOidcError } from '../src/errors.js';
import { authenticate } from '../src/express.js';
import type { Verifier } from '../src/types.js';
import { decodePart, eventually, listen, reassemble } from './helpers.js';
import { resolverVerifiers, tenantIssuers } from './tenants-fixture.js';

// Tokens naming distinct, never-seen issuers cannot be told apart from a new tenant's before the
// resolver answers (the signature needs the issuer's keys). resolverCache.maxPending bounds the
// resolver calls in flight for such issuers: a request beyond it is a 503 at once, never queued,
// and issuers already accepted or refused are not affected.

const { acme, newcomer } = await tenantIssuers('acme', 'newcomer');
afterEach(() => {
  vi.useRealTimers();
});

const withResolver = resolverVerifiers();

const FLOOD = '.flood.test/';
const isFlood = (iss: string) => iss.endsWith(FLOOD);

/**
 * A tenant store that accepts `allowed`, refuses the rest, and holds every answer about a flood
 * issuer until released; it records how many calls are in flight at most.
 */
function tenantStore(allowed: string[]) {
  let release = () => {};
  let gate = new Promise<void>((r) => {
    release = r;
  });
  const store = {
    calls: 0,
    floodCalls: 0,
    inFlight: 0,
    maxInFlight: 0,
    release: () => release(),
    resolver: async (iss: string) => {
      store.calls++;
      if (isFlood(iss)) store.floodCalls++;
      store.inFlight++;
      store.maxInFlight = Math.max(store.maxInFlight, store.inFlight);
      try {
        if (isFlood(iss)) await gate;
        return allowed.includes(iss) ? { issuer: iss } : false;
      } finally {
        store.inFlight--;
      }
    },
    reset() {
      gate = new Promise<void>((r) => {
        release = r;
      });
    },
  };
  return store;
}

/** `count` well-formed tokens, each naming a distinct issuer never seen before (signature unchecked). */
async function floodTokens(count: number): Promise<string[]> {
  const model = await acme.mint();
  const payload = decodePart(model, 1);
  return Array.from({ length: count }, (_, i) =>
    reassemble(model, {
      payload: { ...payload, iss: `https://t${i}-${Math.random().toString(36).slice(2)}${FLOOD}` },
    }),
  );
}

type Settled = { status: number; code: string; retryAfter: string | undefined } | 'verified';

/** Starts a verification and records how it settled; anything but an OidcError fails the test. */
function track(v: Verifier, token: string, into: Settled[]): Promise<void> {
  return v.verify(token).then(
    () => {
      into.push('verified');
    },
    (err: unknown) => {
      if (!isOidcError(err)) throw err;
      into.push({ status: err.status, code: err.code, retryAfter: err.headers['Retry-After'] });
    },
  );
}

describe('resolverCache.maxPending bounds resolver calls for unknown issuers', () => {
  it('500 concurrent tokens with distinct unknown issuers: at most 32 calls in flight (the default), every request 401 or 503, none hangs', async () => {
    const store = tenantStore([]);
    const v = withResolver(store.resolver);
    const tokens = await floodTokens(500);
    const settled: Settled[] = [];
    const all = Promise.all(tokens.map((t) => track(v, t, settled)));
    // Beyond the bound, requests are answered at once, while the store still holds the others.
    await eventually(() => settled.length === 500 - 32, 5000, 10);
    expect(store.floodCalls).toBe(32);
    expect(store.maxInFlight).toBe(32);
    for (const s of settled)
      expect(s).toEqual({
        status: 503,
        code: 'discovery_failed',
        retryAfter: expect.stringMatching(/^[1-9]\d*$/),
      });
    store.release();
    await all;
    expect(settled).toHaveLength(500);
    const refused = settled.filter((s) => s !== 'verified' && s.status === 401);
    expect(refused).toHaveLength(32);
    for (const s of refused) expect(s).toMatchObject({ code: 'issuer_mismatch' });
    expect(store.maxInFlight).toBeLessThanOrEqual(32);
  });

  it('honours a smaller maxPending, and a resolver that answers quickly sees no more than it in flight', async () => {
    const store = tenantStore([]);
    store.release();
    const v = withResolver(store.resolver, { resolverCache: { maxPending: 4 } });
    const settled: Settled[] = [];
    await Promise.all((await floodTokens(500)).map((t) => track(v, t, settled)));
    expect(settled).toHaveLength(500);
    expect(store.maxInFlight).toBeLessThanOrEqual(4);
    expect(store.floodCalls).toBeGreaterThanOrEqual(4);
    for (const s of settled) {
      expect(s).not.toBe('verified');
      if (s !== 'verified') expect([401, 503]).toContain(s.status);
    }
  });

  it('an accepted issuer keeps verifying during the flood, a refused one stays refused without a call, and a slot freed is usable again', async () => {
    const store = tenantStore([acme.issuer, newcomer.issuer]);
    const v = withResolver(store.resolver, { resolverCache: { maxPending: 8 } });
    const cached = await acme.mint();
    await v.verify(cached);
    const refusedToken = await acme.mint({ iss: 'https://refused.test/' });
    await expect(v.verify(refusedToken)).rejects.toMatchObject({ code: 'issuer_mismatch', status: 401 });
    const callsBefore = store.calls;

    const settled: Settled[] = [];
    const flood = Promise.all((await floodTokens(500)).map((t) => track(v, t, settled)));
    await eventually(() => settled.length === 500 - 8, 5000, 10);
    // The bound is reached and held: known issuers are answered as before.
    expect((await v.verify(cached)).issuer).toBe(acme.issuer);
    expect((await v.verify(await acme.mint({ sub: 'fresh' }))).issuer).toBe(acme.issuer);
    await expect(v.verify(refusedToken)).rejects.toMatchObject({ code: 'issuer_mismatch', status: 401 });
    // A tenant never seen before waits its turn like any unknown issuer: a 503, not remembered.
    const early = await v.verify(await newcomer.mint()).catch((e: unknown) => e);
    expect(early).toMatchObject({ code: 'discovery_failed', status: 503 });
    expect(store.calls - callsBefore).toBe(8);
    store.release();
    await flood;
    expect((await v.verify(await newcomer.mint())).issuer).toBe(newcomer.issuer);
    expect(store.maxInFlight).toBeLessThanOrEqual(8);
  });

  it('an accepted issuer is renewed during a flood that holds every slot, so its lease does not lapse', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.UTC(2030, 0, 1);
    vi.setSystemTime(start);
    const store = tenantStore([acme.issuer]);
    const v = withResolver(store.resolver, { resolverCache: { maxPending: 4, ttl: 100 } });
    const token = await acme.mint();
    await v.verify(token);
    const settled: Settled[] = [];
    const flood = Promise.all((await floodTokens(100)).map((t) => track(v, t, settled)));
    await eventually(() => settled.length === 100 - 4, 5000, 10);
    const acmeCalls = () => store.calls - store.floodCalls;
    vi.setSystemTime(start + 90_000); // within the renewal window
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    await eventually(() => acmeCalls() === 2, 2000, 5);
    vi.setSystemTime(start + 150_000); // past the first lease, within the renewed one
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    expect(acmeCalls()).toBe(2);
    store.release();
    await flood;
  });

  it('close() ends a flood held by a hung resolver: every request settles with 503 at once', async () => {
    const v = withResolver(() => new Promise<never>(() => {}), {
      jwks: { timeout: 30 },
      resolverCache: { maxPending: 16 },
    });
    const settled: Settled[] = [];
    const all = Promise.all((await floodTokens(500)).map((t) => track(v, t, settled)));
    await eventually(() => settled.length === 500 - 16, 5000, 10);
    const started = performance.now();
    await v.close();
    await all;
    expect(performance.now() - started).toBeLessThan(2000);
    expect(settled).toHaveLength(500);
    for (const s of settled) expect(s).toMatchObject({ status: 503 });
  });

  it('a resolver that hangs frees its slot at jwks.timeout, so the flood cannot hold the bound forever', async () => {
    let hang = true;
    const v = withResolver((iss) => (hang ? new Promise<never>(() => {}) : iss === newcomer.issuer), {
      jwks: { timeout: 0.3 },
      resolverCache: { maxPending: 4 },
    });
    const settled: Settled[] = [];
    const all = Promise.all((await floodTokens(50)).map((t) => track(v, t, settled)));
    await eventually(() => settled.length === 50 - 4, 5000, 10);
    hang = false;
    await all;
    for (const s of settled) expect(s).toMatchObject({ status: 503, code: 'discovery_failed' });
    expect((await v.verify(await newcomer.mint())).issuer).toBe(newcomer.issuer);
  });

  it('over HTTP (Express 5): a flood of distinct unknown issuers gets 401 or 503 with Retry-After, never 500, while a tenant verifies', async () => {
    const store = tenantStore([acme.issuer]);
    const v = withResolver(store.resolver, { resolverCache: { maxPending: 8 } });
    const app = express();
    app.get('/me', authenticate(v), (req, res) => {
      res.json({ subject: req.amas?.auth?.subject ?? null });
    });
    const server = await listen(app);
    try {
      const good = await acme.mint({ sub: 'alice' });
      const get = (token: string) =>
        fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${token}` } });
      expect((await get(good)).status).toBe(200);
      const flood = Promise.all(
        (await floodTokens(300)).map(async (t) => {
          const res = await get(t);
          await res.arrayBuffer();
          return { status: res.status, retryAfter: res.headers.get('retry-after') };
        }),
      );
      await eventually(() => store.floodCalls === 8, 10_000, 10);
      const during = await get(good);
      expect(during.status).toBe(200);
      expect(await during.json()).toEqual({ subject: 'alice' });
      store.release();
      const responses = await flood;
      expect(store.maxInFlight).toBeLessThanOrEqual(8);
      for (const r of responses) {
        expect([401, 503]).toContain(r.status);
        if (r.status === 503) expect(r.retryAfter).toMatch(/^[1-9]\d*$/);
      }
      expect(responses.filter((r) => r.status === 503).length).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });
});
