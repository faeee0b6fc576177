import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { IssuerOptions, VerifierOptions } from '../src/types.js';
import { AUDIENCE, eventually, rejectsWith, sleep } from './helpers.js';
import { recordSpans } from './spans.js';
import { resolverVerifiers, tenantIssuers } from './tenants-fixture.js';

// A multi-tenant verifier asks a resolver which issuers it trusts. Its answers must not outlive a
// tenant's offboarding by more than resolverCache.ttl, and refusals must not cost a call per request.
// Only Date is faked: sockets, timers and abort signals run for real.

const recorder = recordSpans();
const START = Date.UTC(2030, 0, 1);
const at = (seconds: number) => vi.setSystemTime(START + seconds * 1000);

const { acme, globex } = await tenantIssuers('acme', 'globex');
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  at(0);
  acme.resetRequests();
  acme.recover();
  recorder.exporter.reset();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A tenant store under the test's control, counting the calls the verifier makes to it. */
function tenantStore(initial: string[]) {
  const allowed = new Set(initial);
  const audiences = new Map<string, string>();
  let failure: Error | undefined;
  let gate: Promise<void> | undefined;
  const store = {
    calls: 0,
    allowed,
    audiences,
    down(err = new Error('tenant store down')) {
      failure = err;
    },
    up() {
      failure = undefined;
    },
    /** Holds every answer until the returned function is called. */
    hold(): () => void {
      let release = () => {};
      gate = new Promise<void>((r) => {
        release = r;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
    resolver: async (iss: string): Promise<IssuerOptions | false> => {
      store.calls++;
      if (gate) await gate;
      if (failure) throw failure;
      if (!allowed.has(iss)) return false;
      const audience = audiences.get(iss);
      return audience === undefined ? { issuer: iss } : { issuer: iss, audience };
    },
  };
  return store;
}

const withResolver = resolverVerifiers();
const multiTenant = (store: ReturnType<typeof tenantStore>, extra: Partial<VerifierOptions> = {}) =>
  withResolver(store.resolver, extra);
const cacheOutcomes = () => recorder.spans('amas.oidc.verify').map((s) => s.attributes['amas.oidc.cache']);

describe('accepted issuers live for resolverCache.ttl', () => {
  it('keeps trusting an accepted issuer within the ttl without asking again', async () => {
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store);
    const token = await acme.mint();
    await v.verify(token);
    at(200);
    await v.verify(token);
    await v.verify(await acme.mint());
    expect(store.calls).toBe(1);
    expect(cacheOutcomes()).toEqual(['miss', 'hit', 'miss']);
  });

  it('stops verifying an offboarded issuer when the ttl (default 300 s) ends, cached tokens included', async () => {
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store);
    const token = await acme.mint({ exp: Math.floor(START / 1000) + 3600 });
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    store.allowed.delete(acme.issuer);
    at(300);
    await rejectsWith(v.verify(token), 'issuer_mismatch', 401);
    await rejectsWith(v.verify(await acme.mint()), 'issuer_mismatch', 401);
    expect(store.calls).toBe(2);
    expect(cacheOutcomes()).toEqual(['miss', 'hit', 'miss', 'miss']);
    expect(v.health().issuers).toEqual([]);
  });

  it('with traffic, sees the offboarding at the background renewal, before the ttl ends', async () => {
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store);
    const token = await acme.mint();
    await v.verify(token);
    store.allowed.delete(acme.issuer);
    at(250); // past 80 % of the ttl: a cache hit asks again in the background
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    await eventually(() => store.calls === 2, 2000, 5);
    await eventually(
      async () => (await v.verify(token).catch((e: { code: string }) => e.code)) === 'issuer_mismatch',
      2000,
      5,
    );
    expect(store.calls).toBe(2);
  });

  it('honours a shorter ttl', async () => {
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store, { resolverCache: { ttl: 30 } });
    const token = await acme.mint();
    await v.verify(token);
    store.allowed.delete(acme.issuer);
    at(29);
    await v.verify(await acme.mint()).catch(() => {}); // may start the background renewal
    at(30);
    await rejectsWith(v.verify(token), 'issuer_mismatch', 401);
  });

  it('renews an issuer still accepted in the background: no request waits, keys and cached tokens are kept', async () => {
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store);
    const token = await acme.mint();
    await v.verify(token);
    at(250);
    const release = store.hold();
    // The renewal is pending on the held tenant store, and requests are answered all the same.
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    expect((await v.verify(await acme.mint())).issuer).toBe(acme.issuer);
    expect(store.calls).toBe(2);
    release();
    await sleep(20);
    at(480); // the renewed answer lives until 250 + 300
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    expect(store.calls).toBe(2);
    expect(acme.requests).toMatchObject({ discovery: 1, jwks: 1 });
    expect(cacheOutcomes()).toEqual(['miss', 'hit', 'miss', 'hit']);
  });

  it('applies a changed answer: tokens cached under the old audience are verified again, and refused', async () => {
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store, { audience: [AUDIENCE, 'https://new.api'] });
    const old = await acme.mint({ aud: AUDIENCE });
    await v.verify(old);
    store.audiences.set(acme.issuer, 'https://new.api');
    at(301);
    await rejectsWith(v.verify(old), 'audience_mismatch', 401);
    expect((await v.verify(await acme.mint({ aud: 'https://new.api' }))).issuer).toBe(acme.issuer);
    expect(store.calls).toBe(2);
  });

  it('refuses a token whose issuer the resolver withdraws while its keys are being fetched', async () => {
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store);
    await v.verify(await acme.mint()); // accepted at 0, keys fetched
    at(250);
    const kid = await acme.addKey();
    acme.fail('slow', { delayMs: 300, target: 'jwks' });
    store.allowed.delete(acme.issuer);
    // A new kid makes the verifier fetch the JWKS; meanwhile the renewal withdraws the issuer.
    const pending = v.verify(await acme.mint({}, { kid }));
    await eventually(() => store.calls === 2, 2000, 5);
    await rejectsWith(pending, 'issuer_mismatch', 401);
    expect(acme.requests.jwks).toBe(2);
    await rejectsWith(v.verify(await acme.mint()), 'issuer_mismatch', 401);
  });

  it('an eviction by maxIssuers does not fail a verification in flight (the issuer was not refused)', async () => {
    const store = tenantStore([acme.issuer, globex.issuer]);
    const v = multiTenant(store, { maxIssuers: 1 });
    await v.verify(await acme.mint());
    at(10); // past jwks.cooldown: a new kid may cause a refetch
    const kid = await acme.addKey();
    acme.fail('slow', { delayMs: 300, target: 'jwks' });
    const pending = v.verify(await acme.mint({}, { kid }));
    await v.verify(await globex.mint()); // evicts acme while its JWKS is being fetched
    expect((await pending).issuer).toBe(acme.issuer);
    expect(store.calls).toBe(2);
  });

  it('an issuer evicted by maxIssuers loses its cached tokens until the resolver is asked again', async () => {
    const store = tenantStore([acme.issuer, globex.issuer]);
    const v = multiTenant(store, { maxIssuers: 1 });
    const token = await acme.mint();
    await v.verify(token);
    await v.verify(await globex.mint()); // evicts acme
    store.allowed.delete(acme.issuer);
    await rejectsWith(v.verify(token), 'issuer_mismatch', 401);
    expect(store.calls).toBe(3);
  });
});

describe('the tenant store failing', () => {
  it('keeps an accepted issuer until its ttl while renewals fail, asking at most once per resolverCache.failureCooldown', async () => {
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store);
    const token = await acme.mint();
    await v.verify(token);
    store.down();
    at(250);
    for (let i = 0; i < 20; i++) await v.verify(token);
    await eventually(() => store.calls === 2, 2000, 5);
    await sleep(20);
    for (let i = 0; i < 20; i++) await v.verify(token);
    expect(store.calls).toBe(2);
    at(252); // resolverCache.failureCooldown (2 s) later
    await v.verify(token);
    await eventually(() => store.calls === 3, 2000, 5);
  });

  it('fails closed with 503 once the ttl has ended, and recovers with the same keys', async () => {
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store);
    const token = await acme.mint();
    await v.verify(token);
    store.down();
    at(300);
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    await rejectsWith(v.verify(token), 'discovery_failed', 503); // the failure is remembered: no call
    expect(store.calls).toBe(2);
    store.up();
    at(302); // resolverCache.failureCooldown (2 s) after the failure
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    expect(store.calls).toBe(3);
    expect(acme.requests).toMatchObject({ discovery: 1, jwks: 1 });
  });

  it('never remembers a failure as a refusal', async () => {
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store);
    store.down();
    const token = await acme.mint();
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    store.up();
    at(1); // within resolverCache.failureCooldown: still the outage, never a 401
    await rejectsWith(v.verify(token), 'discovery_failed', 503);
    at(2);
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    expect(store.calls).toBe(2);
  });
});

describe('refusals are remembered briefly and boundedly', () => {
  it('a flood of one unknown iss calls the tenant store once per refusalTtl (default 30 s)', async () => {
    const store = tenantStore([]);
    const v = multiTenant(store);
    const token = await acme.mint({ iss: 'https://bogus.test/' });
    const burst = await Promise.allSettled(Array.from({ length: 200 }, () => v.verify(token)));
    for (let i = 0; i < 200; i++) await rejectsWith(v.verify(token), 'issuer_mismatch', 401);
    for (const r of burst) expect(r).toMatchObject({ reason: { code: 'issuer_mismatch', status: 401 } });
    at(29);
    await rejectsWith(v.verify(token), 'issuer_mismatch', 401);
    expect(store.calls).toBe(1);
    at(30);
    await rejectsWith(v.verify(token), 'issuer_mismatch', 401);
    expect(store.calls).toBe(2);
  });

  it('a tenant onboarded after a refusal gets in once the refusal expires', async () => {
    const store = tenantStore([]);
    const v = multiTenant(store, { resolverCache: { refusalTtl: 5 } });
    const token = await acme.mint();
    await rejectsWith(v.verify(token), 'issuer_mismatch', 401);
    store.allowed.add(acme.issuer);
    at(4);
    await rejectsWith(v.verify(token), 'issuer_mismatch', 401);
    at(5);
    expect((await v.verify(token)).issuer).toBe(acme.issuer);
    expect(store.calls).toBe(2);
  });

  it('keeps at most maxRefusals refusals, dropping the oldest first', async () => {
    const store = tenantStore([]);
    const v = multiTenant(store, { resolverCache: { maxRefusals: 2 } });
    const token = async (name: string) => acme.mint({ iss: `https://${name}.bogus.test/` });
    const [a, b, c] = await Promise.all([token('a'), token('b'), token('c')]);
    for (const t of [a, b, c]) await rejectsWith(v.verify(t as string), 'issuer_mismatch');
    expect(store.calls).toBe(3);
    await rejectsWith(v.verify(c as string), 'issuer_mismatch');
    await rejectsWith(v.verify(b as string), 'issuer_mismatch');
    expect(store.calls).toBe(3);
    await rejectsWith(v.verify(a as string), 'issuer_mismatch');
    expect(store.calls).toBe(4);
  });

  it('refusalTtl 0 remembers no refusal (concurrent requests still share one call)', async () => {
    const store = tenantStore([]);
    const v = multiTenant(store, { resolverCache: { refusalTtl: 0 } });
    const token = await acme.mint({ iss: 'https://bogus.test/' });
    await Promise.allSettled(Array.from({ length: 50 }, () => v.verify(token)));
    expect(store.calls).toBe(1);
    await rejectsWith(v.verify(token), 'issuer_mismatch');
    await rejectsWith(v.verify(token), 'issuer_mismatch');
    expect(store.calls).toBe(3);
  });
});

describe('on the real clock', () => {
  it('an issuer withdrawn from a resolver with a 1 s ttl stops verifying within about a second', async () => {
    vi.useRealTimers();
    const store = tenantStore([acme.issuer]);
    const v = multiTenant(store, { resolverCache: { ttl: 1 } });
    const token = await acme.mint();
    await v.verify(token);
    store.allowed.delete(acme.issuer);
    const started = Date.now();
    await eventually(
      async () => (await v.verify(token).catch((e: { code: string }) => e.code)) === 'issuer_mismatch',
      3000,
      50,
    );
    expect(Date.now() - started).toBeLessThan(2500);
  });
});
