import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisApprovalStore } from '../src/approval-store-redis.js';
import { createEnforcer, type Enforcer } from '../src/enforcer.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import { call, type Framework, startApp, type TestApp } from './apps.js';
import { roleData, startRedis } from './helpers.js';

const agent = 'Bearer agent-42|agents:invoke';
const otherAgent = 'Bearer agent-7|agents:invoke';
const securityApprover = 'Bearer alice|approvals:security';
const adminApprover = 'Bearer bob|approvals:admin';
const activeScan = { target: '10.0.0.5', mode: 'active' };

const frameworks: Framework[] = ['express5', 'express4', 'koa3', 'koa2'];

describe.each(frameworks)('%s: authorize guard and approval routes, end to end', (framework) => {
  let opa: OpaTestServer;
  let enforcer: Enforcer;
  let app: TestApp;
  const clock = { t: Date.now() };

  beforeAll(async () => {
    opa = await startOpaTestServer({ data: roleData });
    enforcer = createEnforcer({
      url: opa.url,
      timeoutMs: 300,
      now: () => clock.t,
      breaker: { failureThreshold: 1000 },
    });
    app = await startApp(framework, enforcer);
  });
  afterEach(() => opa.fault(null));
  afterAll(async () => {
    await app.close();
    enforcer.close();
    await opa.close();
  });

  const escalate = async (auth = agent, input: unknown = activeScan) => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', auth, input);
    expect(r.status).toBe(202);
    return r.body.approval as { id: string; status_url: string; approvers: string[] };
  };

  it('allow: the tool runs', async () => {
    const r = await call(app, 'POST', '/tools/code_reviewer/read_file', agent, { path: 'a.ts' });
    expect(r).toMatchObject({ status: 200, body: { ran: true } });
  });

  it('deny: 403 with the policy reasons; the tool does not run', async () => {
    const r = await call(app, 'POST', '/tools/code_reviewer/delete_file', agent, { path: 'a.ts' });
    expect(r.status).toBe(403);
    expect(r.body).toEqual({
      error: 'policy_denied',
      message: 'the policy denies this action',
      reasons: ['tool_not_allowed'],
    });
  });

  it('unavailable: 503 with Retry-After and no cause details; the tool does not run', async () => {
    await opa.fault({ kind: 'error500' });
    const r = await call(app, 'POST', '/tools/code_reviewer/read_file', agent, { path: 'b.ts' });
    expect(r.status).toBe(503);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(r.body).toEqual({
      error: 'policy_unavailable',
      message: 'the policy decision point is unavailable; retry later',
    });
  });

  it('escalate: 202 with the approval id, status URL (Location) and how to retry', async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, activeScan);
    expect(r.status).toBe(202);
    const approval = r.body.approval as Record<string, unknown>;
    expect(approval).toMatchObject({
      status: 'pending',
      approvers: ['approvals:security'],
      ttl_seconds: 900,
    });
    expect(approval.status_url).toBe(`/approvals/${approval.id}`);
    expect(r.headers.get('location')).toBe(approval.status_url);
    expect(r.body.retry).toEqual({ header: 'amas-approval-id', value: approval.id });
  });

  it('the full flow: escalate -> approver approves with a reason -> retry with the id -> allowed once', async () => {
    const approval = await escalate();
    const pending = await call(app, 'GET', '/approvals', securityApprover);
    expect((pending.body.approvals as { id: string }[]).map((a) => a.id)).toContain(approval.id);
    const status = await call(app, 'GET', approval.status_url, agent);
    expect(status.body).toMatchObject({
      status: 'pending',
      input: { input: activeScan, tool_name: 'run_scan' },
    });
    const ok = await call(app, 'POST', `${approval.status_url}/approve`, securityApprover, {
      reason: 'scan window CHG-9',
    });
    expect(ok).toMatchObject({
      status: 200,
      body: { status: 'approved', decided_by: 'alice', reason: 'scan window CHG-9' },
    });
    const retry = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, activeScan, {
      'amas-approval-id': approval.id,
    });
    expect(retry).toMatchObject({ status: 200, body: { ran: true, approval: approval.id } });
    const again = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, activeScan, {
      'amas-approval-id': approval.id,
    });
    expect(again).toMatchObject({ status: 409, body: { error: 'approval_already_used' } });
    const audit = await call(app, 'GET', approval.status_url, securityApprover);
    expect((audit.body.audit as { action: string }[]).map((e) => e.action)).toEqual([
      'requested',
      'approved',
      'used',
    ]);
  });

  it('attack: retrying with the approval but another input is refused', async () => {
    const approval = await escalate();
    await call(app, 'POST', `${approval.status_url}/approve`, securityApprover, {});
    const r = await call(
      app,
      'POST',
      '/tools/security_auditor/run_scan',
      agent,
      { ...activeScan, target: '10.0.0.6' },
      { 'amas-approval-id': approval.id },
    );
    expect(r).toMatchObject({ status: 403, body: { error: 'approval_mismatch' } });
  });

  it('attack: another agent cannot use the approval', async () => {
    const approval = await escalate();
    await call(app, 'POST', `${approval.status_url}/approve`, securityApprover, {});
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', otherAgent, activeScan, {
      'amas-approval-id': approval.id,
    });
    expect(r).toMatchObject({ status: 403, body: { error: 'approval_mismatch' } });
  });

  it('attack: using a pending approval is refused', async () => {
    const approval = await escalate();
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, activeScan, {
      'amas-approval-id': approval.id,
    });
    expect(r).toMatchObject({ status: 409, body: { error: 'approval_pending' } });
  });

  it('attack: a made-up approval id is refused', async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, activeScan, {
      'amas-approval-id': '3b241101-e2bb-4255-8caf-4136c566a962',
    });
    expect(r).toMatchObject({ status: 404, body: { error: 'approval_not_found' } });
  });

  it('a denied request stays denied', async () => {
    const approval = await escalate();
    const d = await call(app, 'POST', `${approval.status_url}/deny`, securityApprover, { reason: 'freeze' });
    expect(d.body).toMatchObject({ status: 'denied', reason: 'freeze' });
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, activeScan, {
      'amas-approval-id': approval.id,
    });
    expect(r).toMatchObject({ status: 403, body: { error: 'approval_denied' } });
  });

  it('expiry holds: an approval not used within its TTL is refused', async () => {
    const approval = await escalate();
    await call(app, 'POST', `${approval.status_url}/approve`, securityApprover, {});
    clock.t += 901_000;
    const r = await call(app, 'POST', '/tools/security_auditor/run_scan', agent, activeScan, {
      'amas-approval-id': approval.id,
    });
    expect(r).toMatchObject({ status: 410, body: { error: 'approval_expired' } });
    const view = await call(app, 'GET', approval.status_url, agent);
    expect(view.body.status).toBe('expired');
  });

  it('attack: an approver without the required scope is refused', async () => {
    const approval = await escalate();
    const r = await call(app, 'POST', `${approval.status_url}/approve`, adminApprover, {});
    // bob may not see a request for approvals:security at all
    expect(r).toMatchObject({ status: 404, body: { error: 'approval_not_found' } });
  });

  it('attack: the requester cannot approve its own request', async () => {
    const approval = await escalate('Bearer mallory|agents:invoke,approvals:security');
    const r = await call(
      app,
      'POST',
      `${approval.status_url}/approve`,
      'Bearer mallory|agents:invoke,approvals:security',
      {},
    );
    expect(r).toMatchObject({ status: 403, body: { error: 'approval_forbidden' } });
  });

  it('attack: approval routes without authentication answer 401; others see 404', async () => {
    const approval = await escalate();
    expect((await call(app, 'GET', '/approvals')).status).toBe(401);
    expect((await call(app, 'POST', `${approval.status_url}/approve`, undefined, {})).status).toBe(401);
    expect((await call(app, 'GET', approval.status_url, otherAgent)).status).toBe(404);
  });

  it('attack: a non-string reason is refused with 400', async () => {
    const approval = await escalate();
    const r = await call(app, 'POST', `${approval.status_url}/approve`, securityApprover, {
      reason: { $gt: '' },
    });
    expect(r).toMatchObject({ status: 400, body: { error: 'input_invalid' } });
  });

  it('escalation without an authenticated principal is 401, never a pending request', async () => {
    const r = await call(app, 'POST', '/tools/security_auditor/run_pentest', undefined, {});
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('unauthenticated');
  });

  it('a failing input mapper is a 400 without details, never a 500 or a stack', async () => {
    const r = await call(app, 'POST', '/tools/code_reviewer/crash', agent, {});
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      error: 'input_invalid',
      message: 'the request could not be turned into a policy input',
    });
    expect(JSON.stringify(r.body)).not.toContain('hunter2');
  });

  it('attack: a tool input that is not an object is refused with 400', async () => {
    const r = await call(app, 'POST', '/tools/code_reviewer/read_file', agent, ['x']);
    expect(r).toMatchObject({ status: 400, body: { error: 'input_invalid' } });
  });
});

describe('express5 with the Redis approval store: approvals survive a restart of the service', () => {
  it('escalate on one instance, approve and retry on a fresh one', async () => {
    const redisProc = await startRedis();
    const opa = await startOpaTestServer({ data: roleData });
    const r1 = new Redis(redisProc.url);
    const e1 = createEnforcer({
      url: opa.url,
      approvals: { store: createRedisApprovalStore({ redis: r1 }) },
    });
    const app1 = await startApp('express5', e1);
    try {
      const first = await call(app1, 'POST', '/tools/admin/delete_file', agent, { path: '/tmp/x' });
      expect(first.status).toBe(202);
      const id = (first.body.approval as { id: string }).id;
      await app1.close();
      e1.close();
      await r1.quit();

      const r2 = new Redis(redisProc.url);
      const e2 = createEnforcer({
        url: opa.url,
        approvals: { store: createRedisApprovalStore({ redis: r2 }) },
      });
      const app2 = await startApp('express5', e2);
      try {
        expect(
          (
            await call(app2, 'POST', `/approvals/${id}/approve`, 'Bearer root|approvals:admin', {
              reason: 'cleanup',
            })
          ).status,
        ).toBe(200);
        const retry = await call(
          app2,
          'POST',
          '/tools/admin/delete_file',
          agent,
          { path: '/tmp/x' },
          { 'amas-approval-id': id },
        );
        expect(retry).toMatchObject({ status: 200, body: { ran: true, approval: id } });
        const again = await call(
          app2,
          'POST',
          '/tools/admin/delete_file',
          agent,
          { path: '/tmp/x' },
          { 'amas-approval-id': id },
        );
        expect(again.status).toBe(409);
      } finally {
        await app2.close();
        e2.close();
        await r2.quit();
      }
    } finally {
      await opa.close();
      await redisProc.stop();
    }
  });
});
