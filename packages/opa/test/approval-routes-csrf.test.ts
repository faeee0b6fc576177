import express from 'express';
import express4 from 'express4';
import Koa from 'koa';
import Koa2 from 'koa2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { handleApprovalRoute, isJsonContentType } from '../src/approval-routes.js';
import { type Approvals, createApprovals } from '../src/approvals.js';
import { createEnforcer, type Enforcer } from '../src/enforcer.js';
import { approvalRoutes as expressApprovals } from '../src/express.js';
import { approvalRoutes as koaApprovals } from '../src/koa.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import { type Framework, listen, startApp, type TestApp } from './apps.js';
import { roleData } from './helpers.js';

// Cross-site request forgery on the approval routes: a page on another site can make a browser send a
// POST with the approver's cookies, but only with a "simple" Content-Type (form, multipart, text/plain)
// or none. Approve and deny therefore require application/json, which needs a CORS preflight.

const agent = 'Bearer agent-42|agents:invoke';
const approver = 'Bearer alice|approvals:security';
const frameworks: Framework[] = ['express5', 'express4', 'koa3', 'koa2'];

async function post(url: string, headers: Record<string, string>, body?: string) {
  const r = await fetch(url, { method: 'POST', headers, ...(body !== undefined ? { body } : {}) });
  const text = await r.text();
  return {
    status: r.status,
    headers: r.headers,
    body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
  };
}

describe.each(frameworks)('%s: approve and deny need Content-Type: application/json', (framework) => {
  let opa: OpaTestServer;
  let enforcer: Enforcer;
  let app: TestApp;

  beforeAll(async () => {
    opa = await startOpaTestServer({ data: roleData });
    enforcer = createEnforcer({ url: opa.url, breaker: false, timeoutMs: 1_000 });
    app = await startApp(framework, enforcer);
  });
  afterAll(async () => {
    await app.close();
    enforcer.close();
    await opa.close();
  });

  // A new input each time, so that every test has its own pending request.
  let n = 0;
  const pending = async () => {
    n += 1;
    const r = await post(
      `${app.url}/tools/security_auditor/run_scan`,
      { authorization: agent, 'content-type': 'application/json' },
      JSON.stringify({ target: `10.0.0.${n}`, mode: 'active' }),
    );
    expect(r.status).toBe(202);
    return (r.body.approval as { id: string }).id;
  };
  const statusOf = async (id: string) => (await enforcer.approvals.get(id))?.status;

  it('attack: a body-less POST (no Content-Type) cannot approve: 415, still pending', async () => {
    const id = await pending();
    const r = await post(`${app.url}/approvals/${id}/approve`, { authorization: approver });
    expect(r.status).toBe(415);
    expect(r.body).toMatchObject({ error: 'unsupported_media_type' });
    expect(r.headers.get('accept')).toBe('application/json');
    expect(await statusOf(id)).toBe('pending');
  });

  it('attack: a cross-site form post (application/x-www-form-urlencoded) cannot approve', async () => {
    const id = await pending();
    const r = await post(
      `${app.url}/approvals/${id}/approve`,
      { authorization: approver, 'content-type': 'application/x-www-form-urlencoded' },
      'reason=ok',
    );
    expect(r).toMatchObject({ status: 415, body: { error: 'unsupported_media_type' } });
    expect(await statusOf(id)).toBe('pending');
  });

  it('attack: a text/plain post holding JSON (no preflight needed) cannot approve', async () => {
    const id = await pending();
    const r = await post(
      `${app.url}/approvals/${id}/approve`,
      { authorization: approver, 'content-type': 'text/plain' },
      '{"reason":"ok"}',
    );
    expect(r.status).toBe(415);
    expect(await statusOf(id)).toBe('pending');
  });

  it('attack: a multipart/form-data post cannot approve', async () => {
    const id = await pending();
    const form = new FormData();
    form.set('reason', 'ok');
    const res = await fetch(`${app.url}/approvals/${id}/approve`, {
      method: 'POST',
      headers: { authorization: approver },
      body: form,
    });
    expect(res.status).toBe(415);
    expect(await statusOf(id)).toBe('pending');
  });

  it('attack: a cross-site post cannot deny either', async () => {
    const id = await pending();
    const r = await post(`${app.url}/approvals/${id}/deny`, {
      authorization: approver,
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(r.status).toBe(415);
    expect(await statusOf(id)).toBe('pending');
  });

  it('attack: a look-alike type (application/json-patch+json, application/jsonx) is refused', async () => {
    const id = await pending();
    for (const type of ['application/json-patch+json', 'application/jsonx', 'text/json']) {
      const r = await post(
        `${app.url}/approvals/${id}/approve`,
        { authorization: approver, 'content-type': type },
        '{}',
      );
      expect(r.status, type).toBe(415);
    }
    expect(await statusOf(id)).toBe('pending');
  });

  it('application/json with a charset, in any letter case, approves; an empty JSON request too', async () => {
    const a = await pending();
    const ok = await post(
      `${app.url}/approvals/${a}/approve`,
      { authorization: approver, 'content-type': 'Application/JSON; charset=utf-8' },
      '{"reason":"CHG-7"}',
    );
    expect(ok).toMatchObject({ status: 200, body: { status: 'approved', reason: 'CHG-7' } });
    const b = await pending();
    const empty = await post(`${app.url}/approvals/${b}/deny`, {
      authorization: approver,
      'content-type': 'application/json',
    });
    expect(empty).toMatchObject({ status: 200, body: { status: 'denied' } });
  });

  it('reading stays open to any type: GET / and GET /:id need no Content-Type', async () => {
    const id = await pending();
    const list = await fetch(`${app.url}/approvals`, { headers: { authorization: approver } });
    expect(list.status).toBe(200);
    const one = await fetch(`${app.url}/approvals/${id}`, { headers: { authorization: agent } });
    expect(one.status).toBe(200);
  });

  it('without an identity the answer stays 401, whatever the type', async () => {
    const id = await pending();
    const r = await post(`${app.url}/approvals/${id}/approve`, {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(r.status).toBe(401);
  });
});

// The case the review found: the approver's authentication is a session cookie, and the app parses
// forms before the approval routes, so a forged form's fields arrive as a parsed body.
describe('cookie-authenticated approvers behind a form parser', () => {
  let approvals: Approvals;
  const servers: { close(): Promise<void> }[] = [];
  const identity = (cookie: string | undefined) =>
    cookie === 'session=alice' ? { sub: 'alice', scopes: ['approvals:security'] } : undefined;
  const request = () =>
    approvals.request({
      path: 'amas/tool_access/decision',
      input: { agent_role: 'admin', tool_name: 'delete_file', input: { path: `/tmp/${Math.random()}` } },
      principal: { sub: 'agent-42' },
      approval: { approvers: ['approvals:security'], ttlSeconds: 60 },
    });
  beforeAll(() => {
    approvals = createApprovals();
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  for (const [name, e] of [
    ['express5', express],
    ['express4', express4 as unknown as typeof express],
  ] as const) {
    it(`${name}: attack: a forged form post with the session cookie is a 415, not an approval`, async () => {
      const app = e();
      app.use(e.urlencoded({ extended: false }), e.text());
      app.use('/approvals', expressApprovals({ approvals, identity: (req) => identity(req.headers.cookie) }));
      const server = await listen(app.listen(0, '127.0.0.1'));
      servers.push(server);
      const rec = await request();
      for (const [type, body] of [
        ['application/x-www-form-urlencoded', 'reason=forged'],
        ['text/plain', '{"reason":"forged"}'],
      ] as const) {
        const r = await post(
          `${server.url}/approvals/${rec.id}/approve`,
          { cookie: 'session=alice', 'content-type': type },
          body,
        );
        expect(r.status, type).toBe(415);
      }
      expect((await approvals.get(rec.id))?.status).toBe('pending');
    });
  }

  for (const [name, K] of [
    ['koa3', Koa],
    ['koa2', Koa2 as unknown as typeof Koa],
  ] as const) {
    it(`${name}: attack: a forged form post with the session cookie is a 415, not an approval`, async () => {
      const app = new K();
      // A form parser in front, as a cookie-session app would have.
      app.use(async (ctx, next) => {
        if (ctx.is('application/x-www-form-urlencoded')) {
          let text = '';
          for await (const chunk of ctx.req) text += chunk;
          (ctx.request as { body?: unknown }).body = Object.fromEntries(new URLSearchParams(text));
        }
        await next();
      });
      app.use(koaApprovals({ approvals, identity: (ctx) => identity(ctx.get('cookie') || undefined) }));
      const server = await listen(app.listen(0, '127.0.0.1'));
      servers.push(server);
      const rec = await request();
      const r = await post(
        `${server.url}/approvals/${rec.id}/approve`,
        { cookie: 'session=alice', 'content-type': 'application/x-www-form-urlencoded' },
        'reason=forged',
      );
      expect(r).toMatchObject({ status: 415, body: { error: 'unsupported_media_type' } });
      expect((await approvals.get(rec.id))?.status).toBe('pending');
      const ok = await post(
        `${server.url}/approvals/${rec.id}/approve`,
        { cookie: 'session=alice', 'content-type': 'application/json' },
        '{"reason":"real"}',
      );
      expect(ok).toMatchObject({ status: 200, body: { status: 'approved', reason: 'real' } });
    });
  }
});

describe('handleApprovalRoute (the framework-free core)', () => {
  const identity = { sub: 'alice', scopes: ['approvals:security'] };
  const statusUrl = (id: string) => `/approvals/${id}`;

  it('attack: approve without a content type is a 415 before the store is asked', async () => {
    const approvals = createApprovals();
    const rec = await approvals.request({
      path: 'p',
      input: {},
      principal: { sub: 'agent-42' },
      approval: { approvers: ['approvals:security'], ttlSeconds: 60 },
    });
    for (const contentType of [undefined, '', 'application/x-www-form-urlencoded']) {
      const a = await handleApprovalRoute(approvals, {
        method: 'POST',
        path: `/${rec.id}/approve`,
        contentType,
        body: { reason: 'forged' },
        identity,
        statusUrl,
      });
      expect(a?.status, String(contentType)).toBe(415);
    }
    expect((await approvals.get(rec.id))?.status).toBe('pending');
  });

  it('isJsonContentType reads the media type only, case-insensitively', () => {
    expect(isJsonContentType('application/json')).toBe(true);
    expect(isJsonContentType(' application/json ; charset=UTF-8')).toBe(true);
    expect(isJsonContentType('APPLICATION/JSON')).toBe(true);
    expect(isJsonContentType('application/json-seq')).toBe(false);
    expect(isJsonContentType('application/vnd.api+json')).toBe(false);
    expect(isJsonContentType('text/plain; application/json')).toBe(false);
    expect(isJsonContentType(undefined)).toBe(false);
  });
});
