import { runInNewContext } from 'node:vm';
import type { NextFunction, Request, Response } from 'express';
import type { Context, Next } from 'koa';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { authenticate as expressAuthenticate } from '../src/express.js';
import { authenticate as koaAuthenticate } from '../src/koa.js';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import type { JwtClaims, Principal, RequestLike, Verifier } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, eventually } from './helpers.js';

/** Wrapper verifiers whose answers are not native promises: each must still be waited for. */
const foreign = (): [string, (r: RequestLike) => PromiseLike<unknown>][] => {
  const OtherPromise = runInNewContext('Promise') as PromiseConstructor;
  const thenable = (r: RequestLike): PromiseLike<unknown> => ({
    // biome-ignore lint/suspicious/noThenProperty: a hand-made thenable, as some promise libraries make
    then: (ok, ko) => verifier.verifyRequest(r).then(ok, ko),
  });
  return [
    ['a promise of another realm', (r) => OtherPromise.resolve().then(() => verifier.verifyRequest(r))],
    ['a hand-made thenable', thenable],
  ];
};

// The adapters pass a request with a cached token on without waiting for a promise (the path most
// requests take); everything else still goes through the verification's promise. These tests call
// the middleware directly with minimal request objects, to see when `next` runs.

let idp: TestIssuer;
let verifier: Verifier;
beforeAll(async () => {
  idp = await createTestIssuer({ audience: AUDIENCE });
  verifier = createVerifier(idp.verifierOptions());
  await verifier.warmUp();
});
afterAll(async () => {
  await verifier.close();
  await idp.close();
});
afterEach(() => {
  vi.useRealTimers();
});

interface Sent {
  status?: number;
  body?: unknown;
}

function expressCall(token: string, v: Verifier = verifier) {
  const header = `Bearer ${token}`;
  const req = {
    headers: { authorization: header },
    rawHeaders: ['Authorization', header],
    url: '/tools/x',
    originalUrl: '/tools/x',
  } as unknown as Request;
  const sent: Sent = {};
  const res = {
    headersSent: false,
    status(code: number) {
      sent.status = code;
      return this;
    },
    set() {
      return this;
    },
    json(body: unknown) {
      sent.body = body;
      return this;
    },
  } as unknown as Response;
  let nexts = 0;
  const next = (() => {
    nexts++;
  }) as NextFunction;
  expressAuthenticate(v)(req, res, next);
  const syncNexts = nexts;
  return { req, sent, syncNexts, nexts: () => nexts };
}

function koaCall(token: string, v: Verifier = verifier) {
  const header = `Bearer ${token}`;
  const sent: Sent = {};
  const ctx = {
    headers: { authorization: header },
    req: { rawHeaders: ['Authorization', header] },
    url: '/tools/x',
    originalUrl: '/tools/x',
    state: {} as { amas?: { auth?: Principal<JwtClaims> } },
    set() {},
    set status(code: number) {
      sent.status = code;
    },
    set body(value: unknown) {
      sent.body = value;
    },
  };
  let nexts = 0;
  const next: Next = async () => {
    nexts++;
  };
  const done = Promise.resolve(koaAuthenticate(v)(ctx as unknown as Context, next));
  const syncNexts = nexts;
  return { ctx, sent, done, syncNexts, nexts: () => nexts };
}

describe('Express authenticate()', () => {
  it('passes a cached token on before it returns, and a new one once verified, with the same principal', async () => {
    const token = await idp.mint({ sub: 'agent-express' });
    const first = expressCall(token);
    expect(first.syncNexts).toBe(0);
    await eventually(() => first.nexts() === 1);
    expect(first.req.amas?.auth?.subject).toBe('agent-express');
    const second = expressCall(token);
    expect(second.syncNexts).toBe(1);
    expect(second.req.amas?.auth).toBe(first.req.amas?.auth);
  });

  it('never passes an expired cached token on, on either path', async () => {
    const token = await idp.mint({ sub: 'agent-expiring' }, { expiresIn: 60 });
    const first = expressCall(token);
    await eventually(() => first.nexts() === 1);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 10 * 60_000);
    const late = expressCall(token);
    expect(late.syncNexts).toBe(0);
    await eventually(() => late.sent.status !== undefined);
    expect(late.sent.status).toBe(401);
    expect(late.sent.body).toMatchObject({ error: 'token_expired' });
    expect(late.nexts()).toBe(0);
  });

  it('works with any object that has verifyRequest (a wrapper), always through its promise', async () => {
    const calls: RequestLike[] = [];
    const wrapper = {
      verifyRequest: (request: RequestLike) => {
        calls.push(request);
        return verifier.verifyRequest(request);
      },
    } as unknown as Verifier;
    const token = await idp.mint({ sub: 'agent-wrapped' });
    for (let i = 0; i < 2; i++) {
      const call = expressCall(token, wrapper);
      expect(call.syncNexts).toBe(0);
      await eventually(() => call.nexts() === 1);
      expect(call.req.amas?.auth?.subject).toBe('agent-wrapped');
    }
    expect(calls).toHaveLength(2);
  });
});

describe.each(foreign())('a wrapper verifier that answers with %s', (_name, answer) => {
  const wrapper = { verifyRequest: answer } as unknown as Verifier;

  it('Express: refuses a bad token (401, next never called) and passes a good one only once verified', async () => {
    const bad = expressCall('not.a.token', wrapper);
    expect(bad.syncNexts).toBe(0);
    await eventually(() => bad.sent.status !== undefined);
    expect(bad.sent.status).toBe(401);
    expect(bad.nexts()).toBe(0);
    const good = expressCall(await idp.mint({ sub: 'agent-foreign' }), wrapper);
    expect(good.syncNexts).toBe(0);
    await eventually(() => good.nexts() === 1);
    expect(good.req.amas?.auth?.subject).toBe('agent-foreign');
  });

  it('Koa: refuses a bad token (401, next never called) and passes a good one only once verified', async () => {
    const bad = koaCall('not.a.token', wrapper);
    expect(bad.syncNexts).toBe(0);
    await bad.done;
    expect(bad.sent.status).toBe(401);
    expect(bad.nexts()).toBe(0);
    const good = koaCall(await idp.mint({ sub: 'agent-foreign-koa' }), wrapper);
    expect(good.syncNexts).toBe(0);
    await good.done;
    expect(good.ctx.state.amas?.auth?.subject).toBe('agent-foreign-koa');
  });
});

describe('Koa authenticate()', () => {
  it('passes a cached token on before it returns, and a new one once verified, with the same principal', async () => {
    const token = await idp.mint({ sub: 'agent-koa' });
    const first = koaCall(token);
    expect(first.syncNexts).toBe(0);
    await first.done;
    expect(first.nexts()).toBe(1);
    expect(first.ctx.state.amas?.auth?.subject).toBe('agent-koa');
    const second = koaCall(token);
    expect(second.syncNexts).toBe(1);
    await second.done;
    expect(second.ctx.state.amas?.auth).toBe(first.ctx.state.amas?.auth);
  });

  it('never passes an expired cached token on, on either path', async () => {
    const token = await idp.mint({ sub: 'agent-koa-expiring' }, { expiresIn: 60 });
    await koaCall(token).done;
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 10 * 60_000);
    const late = koaCall(token);
    await late.done;
    expect(late.nexts()).toBe(0);
    expect(late.sent.status).toBe(401);
    expect(late.sent.body).toMatchObject({ error: 'token_expired' });
  });

  it('works with any object that has verifyRequest (a wrapper), always through its promise', async () => {
    const wrapper = { verifyRequest: (r: RequestLike) => verifier.verifyRequest(r) } as unknown as Verifier;
    const token = await idp.mint({ sub: 'agent-koa-wrapped' });
    for (let i = 0; i < 2; i++) {
      const call = koaCall(token, wrapper);
      expect(call.syncNexts).toBe(0);
      await call.done;
      expect(call.ctx.state.amas?.auth?.subject).toBe('agent-koa-wrapped');
    }
  });
});
