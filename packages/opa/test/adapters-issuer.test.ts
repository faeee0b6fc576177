import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisApprovalStore } from '../src/approval-store-redis.js';
import { createEnforcer, type Enforcer } from '../src/enforcer.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import { call, type Framework, startApp, type TestApp } from './apps.js';
import { type RedisProcess, roleData, startRedis } from './helpers.js';

// Two issuers, each with a user "alice": the same `sub`, two people. The test apps put
// { subject, issuer, scopes } on amas.auth (the shape of @amas/oidc), the issuer from "test-issuer".
const A = 'https://idp-a.example.com/';
const B = 'https://idp-b.example.com/';
const agent = 'Bearer alice|agents:invoke';
const approverToken = 'Bearer alice|approvals:security';
const activeScan = { target: '10.0.0.5', mode: 'active' };

/** Calls the app as `who`: its token, and the issuer the stand-in login puts on the principal. */
const callAs = (
  app: TestApp,
  method: string,
  path: string,
  who: { auth: string; issuer?: string },
  body?: unknown,
  extra: Record<string, string> = {},
) =>
  call(app, method, path, who.auth, body, {
    ...(who.issuer !== undefined ? { 'test-issuer': who.issuer } : {}),
    ...extra,
  });

const aliceA = { auth: agent, issuer: A };
const aliceB = { auth: agent, issuer: B };
const aliceNoIss = { auth: agent };
const approverA = { auth: approverToken, issuer: A };
const approverB = { auth: approverToken, issuer: B };

let redisProc: RedisProcess;
let opa: OpaTestServer;
const clients: Redis[] = [];

beforeAll(async () => {
  [redisProc, opa] = await Promise.all([startRedis(), startOpaTestServer({ data: roleData })]);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
  await Promise.all([redisProc.stop(), opa.close()]);
});

const frameworks: Framework[] = ['express5', 'express4', 'koa3', 'koa2'];

describe.each(frameworks)('%s with the Redis store: approvals bound to (iss, sub)', (framework) => {
  let enforcer: Enforcer;
  let app: TestApp;

  beforeAll(async () => {
    const redis = new Redis(redisProc.url, { maxRetriesPerRequest: 1 });
    clients.push(redis);
    enforcer = createEnforcer({
      url: opa.url,
      timeoutMs: 300,
      cache: false,
      breaker: { failureThreshold: 1000 },
      approvals: {
        store: createRedisApprovalStore({ redis, prefix: `e2e-${framework}-${Date.now()}:` }),
        maxPendingPerPrincipal: 2,
      },
    });
    app = await startApp(framework, enforcer);
  });
  afterAll(async () => {
    await app.close();
    enforcer.close();
  });

  const escalate = async (who: { auth: string; issuer?: string }, input: unknown = activeScan) => {
    const r = await callAs(app, 'POST', '/tools/security_auditor/run_scan', who, input);
    expect(r.status).toBe(202);
    return r.body.approval as { id: string; status_url: string };
  };

  it('attack: alice of issuer B cannot view, use or be handed alice of issuer A’s request', async () => {
    const mine = await escalate(aliceA);
    expect((await callAs(app, 'GET', mine.status_url, aliceA)).body).toMatchObject({
      principal: { sub: 'alice', iss: A },
    });
    expect((await callAs(app, 'GET', mine.status_url, aliceB)).status).toBe(404);
    expect((await callAs(app, 'GET', mine.status_url, aliceNoIss)).status).toBe(404);
    // Re-escalating the same call: alice@A gets her request back, alice@B a request of her own.
    expect((await escalate(aliceA)).id).toBe(mine.id);
    const theirs = await escalate(aliceB);
    expect(theirs.id).not.toBe(mine.id);

    const ok = await callAs(
      app,
      'POST',
      `${mine.status_url}/approve`,
      { auth: 'Bearer bob|approvals:security', issuer: A },
      {},
    );
    expect(ok.status).toBe(200);
    for (const thief of [aliceB, aliceNoIss]) {
      const r = await callAs(app, 'POST', '/tools/security_auditor/run_scan', thief, activeScan, {
        'amas-approval-id': mine.id,
      });
      expect(r).toMatchObject({ status: 403, body: { error: 'approval_mismatch' } });
    }
    const retry = await callAs(app, 'POST', '/tools/security_auditor/run_scan', aliceA, activeScan, {
      'amas-approval-id': mine.id,
    });
    expect(retry).toMatchObject({ status: 200, body: { ran: true, approval: mine.id } });
  });

  it('attack: the requester cannot approve its own request; alice of another issuer may', async () => {
    const req = await escalate(aliceA, { ...activeScan, target: '10.0.0.6' });
    const self = await callAs(app, 'POST', `${req.status_url}/approve`, approverA, {});
    expect(self).toMatchObject({ status: 403, body: { error: 'approval_forbidden' } });
    const listA = await callAs(app, 'GET', '/approvals', approverA);
    expect((listA.body.approvals as { id: string }[]).map((a) => a.id)).not.toContain(req.id);
    const listB = await callAs(app, 'GET', '/approvals', approverB);
    expect((listB.body.approvals as { id: string }[]).map((a) => a.id)).toContain(req.id);
    const other = await callAs(app, 'POST', `${req.status_url}/approve`, approverB, { reason: 'four eyes' });
    expect(other).toMatchObject({
      status: 200,
      body: {
        status: 'approved',
        principal: { sub: 'alice', iss: A },
        decided_by: 'alice',
        decided_by_iss: B,
      },
    });
    const audit = other.body.audit as { action: string; by: string; iss?: string }[];
    expect(audit.map((e) => [e.action, e.by, e.iss])).toEqual([
      ['requested', 'alice', A],
      ['approved', 'alice', B],
    ]);
  });

  it('attack: alice of one issuer cannot exhaust the limit of alice of another (429 is per principal)', async () => {
    const aliceC = { auth: agent, issuer: 'https://idp-c.example.com/' };
    const aliceD = { auth: agent, issuer: 'https://idp-d.example.com/' };
    const scan = (n: number) => ({ ...activeScan, target: `10.0.1.${n}` });
    for (const n of [1, 2]) await escalate(aliceC, scan(n));
    const over = await callAs(app, 'POST', '/tools/security_auditor/run_scan', aliceC, scan(3));
    expect(over).toMatchObject({ status: 429, body: { error: 'approval_limit' } });
    await escalate(aliceD, scan(3));
    await escalate(aliceNoIss, scan(4));
  });

  it('attack: a huge issuer answers 401 on the tool route and on the approval routes, never 500', async () => {
    const huge = { auth: agent, issuer: `https://${'h'.repeat(4_000)}` };
    const r = await callAs(app, 'POST', '/tools/security_auditor/run_scan', huge, activeScan);
    expect(r).toMatchObject({ status: 401, body: { error: 'unauthenticated' } });
    const list = await callAs(app, 'GET', '/approvals', { ...huge, auth: approverToken });
    expect(list).toMatchObject({ status: 401, body: { error: 'unauthenticated' } });
  });

  it('an empty issuer header is ignored: the caller is alice without issuer, as before', async () => {
    const req = await escalate({ auth: agent, issuer: '' }, { ...activeScan, target: '10.0.2.1' });
    expect((await callAs(app, 'GET', req.status_url, aliceNoIss)).body).toMatchObject({
      principal: { sub: 'alice' },
    });
    expect((await callAs(app, 'GET', req.status_url, aliceA)).status).toBe(404);
  });
});
