import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOpaClient, normalizePath } from '../src/client.js';
import { isOpaError } from '../src/errors.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import { freePort, roleData } from './helpers.js';

describe('createOpaClient', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer({ data: roleData, token: 'opa-token', bundles: { amas: 'r1' } });
  });
  afterEach(() => opa.fault(null));
  afterAll(() => opa.close());

  it('reads a defined result with its decision_id', async () => {
    const client = createOpaClient({ url: opa.url, token: 'opa-token' });
    const r = await client.evaluate('amas/roles/admin/version', {});
    expect(r).toMatchObject({ ok: true, defined: true, result: '1.0.0' });
    expect(r.ok && r.decisionId).toMatch(/^[0-9a-f-]{36}$/);
    client.close();
  });

  it('tells an undefined result apart: defined false, no result', async () => {
    const client = createOpaClient({ url: opa.url, token: 'opa-token' });
    const r = await client.evaluate('amas/nothing/here', {});
    expect(r).toMatchObject({ ok: true, defined: false });
    expect(r.ok && 'result' in r).toBe(false);
    client.close();
  });

  it('sends the bearer token (from a function) and custom headers', async () => {
    const client = createOpaClient({
      url: opa.url,
      token: async () => 'opa-token',
      headers: { 'x-tenant': 't1' },
    });
    expect((await client.evaluate('amas/roles', {})).ok).toBe(true);
    expect(opa.lastHeaders()?.authorization).toBe('Bearer opa-token');
    expect(opa.lastHeaders()?.['x-tenant']).toBe('t1');
    client.close();
  });

  it('reports a 401 from OPA as http_error with OPA code', async () => {
    const client = createOpaClient({ url: opa.url, token: 'wrong' });
    const r = await client.evaluate('amas/roles', {});
    expect(r).toMatchObject({ ok: false, cause: { kind: 'http_error', status: 401, code: 'unauthorized' } });
    client.close();
  });

  it('captures provenance when configured', async () => {
    const client = createOpaClient({ url: opa.url, token: 'opa-token', provenance: true });
    const r = await client.evaluate('amas/roles', {});
    expect(r.ok && r.provenance?.bundles?.amas?.revision).toBe('r1');
    client.close();
  });

  it('reads 500 bodies: code, message and errors with location', async () => {
    await opa.fault({ kind: 'error500' });
    const client = createOpaClient({ url: opa.url, token: 'opa-token', retries: 0 });
    const r = await client.evaluate('amas/roles', {});
    expect(r).toMatchObject({
      ok: false,
      cause: {
        kind: 'http_error',
        status: 500,
        code: 'internal_error',
        errors: [{ code: 'eval_conflict_error', location: { file: 'policy.rego', row: 4, col: 1 } }],
      },
    });
    client.close();
  });

  it('refuses a body over maxResponseBytes without parsing it', async () => {
    await opa.fault({ kind: 'huge', bytes: 300_000 });
    const client = createOpaClient({ url: opa.url, token: 'opa-token', maxResponseBytes: 64 * 1024 });
    expect(await client.evaluate('amas/roles', {})).toMatchObject({
      ok: false,
      cause: { kind: 'too_large' },
    });
    client.close();
  });

  it('retries a refused connection within the deadline, then reports down', async () => {
    const port = await freePort();
    const client = createOpaClient({
      url: `http://127.0.0.1:${port}`,
      retries: 2,
      retryBackoffMs: 5,
      timeoutMs: 500,
    });
    const t0 = performance.now();
    expect(await client.evaluate('a/b', {})).toMatchObject({ ok: false, cause: { kind: 'down' } });
    expect(performance.now() - t0).toBeLessThan(500);
    client.close();
  });

  it('does not retry an evaluation error (500): one request only', async () => {
    await opa.fault({ kind: 'error500' });
    opa.resetStats();
    const client = createOpaClient({ url: opa.url, token: 'opa-token', retries: 3 });
    await client.evaluate('amas/roles', {});
    expect(opa.stats().data).toBe(1);
    client.close();
  });

  it('checks /health with bundles, and reports OPA error text when unhealthy', async () => {
    const client = createOpaClient({ url: opa.url });
    expect(await client.health({ bundles: true })).toEqual({ healthy: true, status: 200 });
    opa.setHealth({ bundlesReady: false });
    expect(await client.health({ bundles: true })).toEqual({
      healthy: false,
      status: 500,
      error: 'one or more bundles are not activated',
    });
    opa.setHealth({ bundlesReady: true });
    client.close();
  });

  it('validates options once, naming the option', () => {
    const bad = [
      [{ url: 'ftp://x' }, /option "url"/],
      [{ url: 'http://u:p@127.0.0.1' }, /without credentials/],
      [{ url: 'http://127.0.0.1', timeoutMs: 0 }, /option "timeoutMs"/],
      [{ url: 'http://127.0.0.1', headers: { Authorization: 'x' } }, /use the "token" option/],
      [{ url: 'http://127.0.0.1', nope: 1 }, /Unrecognized key/],
    ] as const;
    for (const [opts, re] of bad) {
      try {
        createOpaClient(opts as never);
        expect.unreachable();
      } catch (err) {
        expect(isOpaError(err) && err.code).toBe('config_invalid');
        expect((err as Error).message).toMatch(re);
      }
    }
  });

  it('attack: a path cannot reach another endpoint', () => {
    for (const p of ['../health', 'a/../../v1/policies', 'a?b=1', 'a/%2e%2e', '', 'a//b', 'a b']) {
      expect(() => normalizePath(p), p).toThrow(/policy path/);
    }
    expect(normalizePath('/v1/data/amas/tool_access/decision')).toBe('amas/tool_access/decision');
  });
});

describe('createOpaClient: bounded waits', () => {
  it('a token function that never answers does not hold the decision past the deadline', async () => {
    const opa = await startOpaTestServer();
    const client = createOpaClient({
      url: opa.url,
      timeoutMs: 100,
      token: () => new Promise<string>(() => undefined),
    });
    const t0 = performance.now();
    expect(await client.evaluate('a/b', {})).toMatchObject({ ok: false, cause: { kind: 'down' } });
    expect(performance.now() - t0).toBeLessThan(2_000);
    client.close();
    await opa.close();
  });
});
