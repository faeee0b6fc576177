import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuiltinError, type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import { roleData } from './helpers.js';

// The test server must answer as OPA's REST API documents (and OPA's own server tests show).

describe('OPA test server: Data API', () => {
  let opa: OpaTestServer;
  const post = (path: string, body?: string, headers: Record<string, string> = {}) =>
    fetch(`${opa.url}${path}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
    });

  beforeAll(async () => {
    opa = await startOpaTestServer({
      data: { ...roleData, x: { 'a/b': { 'c/d': 1 } } },
      rules: {
        'test/allow': (input) => (input as { user?: string } | undefined)?.user === 'alice',
        'test/maybe': (input) =>
          (input as { user?: string } | undefined)?.user === 'alice' ? true : undefined,
        'test/div': () => {
          throw new BuiltinError('div: divide by zero');
        },
      },
      bundles: { authz: 'rev-42' },
    });
  });
  afterAll(() => opa.close());

  it('answers 200 with result and a decision_id for a defined rule', async () => {
    const r = await post('/v1/data/test/allow', JSON.stringify({ input: { user: 'alice' } }));
    expect(r.status).toBe(200);
    const body = (await r.json()) as Record<string, unknown>;
    expect(body.result).toBe(true);
    expect(body.decision_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers 200 without a result key for an undefined rule', async () => {
    const r = await post('/v1/data/test/maybe', JSON.stringify({ input: { user: 'bob' } }));
    expect(r.status).toBe(200);
    const body = (await r.json()) as Record<string, unknown>;
    expect(Object.hasOwn(body, 'result')).toBe(false);
  });

  it('answers 200 without a result for a path that does not exist', async () => {
    const body = (await (await post('/v1/data/nope/nothing', '{"input":{}}')).json()) as Record<
      string,
      unknown
    >;
    expect(Object.hasOwn(body, 'result')).toBe(false);
  });

  it('adds the api_usage_warning when the input key is missing', async () => {
    for (const b of ['{}', '', '{"inp":1}']) {
      const body = (await (await post('/v1/data/test/allow', b)).json()) as Record<string, unknown>;
      expect(body.warning).toEqual({
        code: 'api_usage_warning',
        message: "'input' key missing from the request",
      });
      expect(body.result).toBe(false);
    }
    const ok = (await (await post('/v1/data/test/allow', '{"input":{}}')).json()) as Record<string, unknown>;
    expect(ok.warning).toBeUndefined();
  });

  it('answers 400 invalid_parameter for a malformed body', async () => {
    const r = await post('/v1/data/test/allow', '{"input": @}');
    expect(r.status).toBe(400);
    const body = (await r.json()) as { code: string; message: string };
    expect(body.code).toBe('invalid_parameter');
    expect(body.message).toMatch(/^body contains malformed input document: /);
  });

  it('answers 405 to HEAD on /v1/data', async () => {
    expect((await fetch(`${opa.url}/v1/data`, { method: 'HEAD' })).status).toBe(405);
  });

  it('evaluates the package document: rules below the path, as an object', async () => {
    const body = (await (await post('/v1/data/test', '{"input":{"user":"alice"}}')).json()) as {
      result: unknown;
    };
    expect(body.result).toEqual({ allow: true, maybe: true });
  });

  it('serves data documents and escaped path segments', async () => {
    const body = (await (await post('/v1/data/x/a%2Fb/c%2Fd', '{"input":{}}')).json()) as { result: unknown };
    expect(body.result).toBe(1);
    const roles = (await (await post('/v1/data/amas/roles/admin/version', '{"input":{}}')).json()) as {
      result: unknown;
    };
    expect(roles.result).toBe('1.0.0');
  });

  it('supports GET with the input as a query parameter, without a warning', async () => {
    const r = await fetch(`${opa.url}/v1/data/test/allow?input=${encodeURIComponent('{"user":"alice"}')}`);
    const body = (await r.json()) as Record<string, unknown>;
    expect(body.result).toBe(true);
    expect(body.warning).toBeUndefined();
  });

  it('adds provenance with bundle revisions when asked', async () => {
    const body = (await (await post('/v1/data/test/allow?provenance', '{"input":{}}')).json()) as {
      provenance: { version: string; bundles: Record<string, { revision: string }> };
    };
    expect(typeof body.provenance.version).toBe('string');
    expect(body.provenance.bundles.authz?.revision).toBe('rev-42');
  });

  it('adds metrics when asked', async () => {
    const body = (await (await post('/v1/data/test/allow?metrics', '{"input":{}}')).json()) as Record<
      string,
      unknown
    >;
    expect(body.metrics).toBeTypeOf('object');
  });

  it('turns a failing built-in into undefined, or into a 500 eval_builtin_error when strict', async () => {
    const lax = (await (await post('/v1/data/test/div', '{"input":{}}')).json()) as Record<string, unknown>;
    expect(Object.hasOwn(lax, 'result')).toBe(false);
    const strict = await post('/v1/data/test/div?strict-builtin-errors', '{"input":{}}');
    expect(strict.status).toBe(500);
    const body = (await strict.json()) as { code: string; errors: { code: string }[] };
    expect(body.code).toBe('internal_error');
    expect(body.errors[0]?.code).toBe('eval_builtin_error');
  });

  it('accepts a gzip request body and gzips large answers when asked', async () => {
    const r = await post('/v1/data/amas/roles', gzipSync('{"input":{}}') as unknown as string, {
      'content-encoding': 'gzip',
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-encoding')).toBe('gzip');
    const body = (await r.json()) as { result: Record<string, unknown> };
    expect(Object.keys(body.result).sort()).toEqual([
      'admin',
      'code_reviewer',
      'orchestrator',
      'security_auditor',
    ]);
  });

  it('writes and deletes data documents (PUT 204, If-None-Match 304, DELETE 204/404)', async () => {
    expect((await fetch(`${opa.url}/v1/data/tmp/a`, { method: 'PUT', body: '1' })).status).toBe(204);
    expect(
      (
        await fetch(`${opa.url}/v1/data/tmp/a`, {
          method: 'PUT',
          body: '2',
          headers: { 'if-none-match': '*' },
        })
      ).status,
    ).toBe(304);
    expect(
      ((await (await post('/v1/data/tmp/a', '{"input":{}}')).json()) as { result: unknown }).result,
    ).toBe(1);
    expect((await fetch(`${opa.url}/v1/data/tmp/a`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${opa.url}/v1/data/tmp/a`, { method: 'DELETE' })).status).toBe(404);
  });
});

describe('OPA test server: Health API', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer();
  });
  afterAll(() => opa.close());
  const get = async (path: string) => {
    const r = await fetch(`${opa.url}${path}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  it('answers 200 {} when healthy', async () => {
    expect(await get('/health')).toEqual({ status: 200, body: {} });
    expect(await get('/health?bundles')).toEqual({ status: 200, body: {} });
  });

  it('answers 500 {"error"} while bundles are not activated, only when bundles are asked for', async () => {
    opa.setHealth({ bundlesReady: false });
    expect(await get('/health?bundles')).toEqual({
      status: 500,
      body: { error: 'one or more bundles are not activated' },
    });
    expect((await get('/health')).status).toBe(200);
    opa.setHealth({ bundlesReady: true });
  });

  it('checks plugins, honouring exclude-plugin', async () => {
    opa.setHealth({ plugins: { decision_logs: 'ERROR', bundle: 'OK' } });
    expect(await get('/health?plugins')).toEqual({
      status: 500,
      body: { error: 'one or more plugins are not up' },
    });
    expect((await get('/health?plugins&exclude-plugin=decision_logs')).status).toBe(200);
    opa.setHealth({ plugins: {} });
  });

  it('answers /health/live and /health/ready from the system.health policy, 500 when undefined', async () => {
    expect(await get('/health/live')).toEqual({
      status: 500,
      body: { error: 'health check (data.system.health.live) was undefined' },
    });
    opa.setHealth({ live: true, ready: false });
    expect((await get('/health/live')).status).toBe(200);
    expect((await get('/health/ready')).status).toBe(500);
  });
});

describe('OPA test server: bearer authentication', () => {
  it('answers 401 unauthorized without the token', async () => {
    const opa = await startOpaTestServer({ token: 's3cret' });
    try {
      const r = await fetch(`${opa.url}/v1/data/x`, { method: 'POST', body: '{"input":{}}' });
      expect(r.status).toBe(401);
      expect(((await r.json()) as { code: string }).code).toBe('unauthorized');
      const ok = await fetch(`${opa.url}/v1/data/x`, {
        method: 'POST',
        body: '{"input":{}}',
        headers: { authorization: 'Bearer s3cret' },
      });
      expect(ok.status).toBe(200);
    } finally {
      await opa.close();
    }
  });
});
