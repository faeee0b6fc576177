import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createMemoryApprovalStore } from '../src/approval-store-memory.js';
import { createRedisApprovalStore } from '../src/approval-store-redis.js';
import { createApprovals } from '../src/approvals.js';
import { createEnforcer } from '../src/enforcer.js';
import { isOpaError, type OpaErrorCode } from '../src/errors.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import type { ApprovalAuditEvent, ApprovalStore } from '../src/types.js';
import { roleData, useRedis } from './helpers.js';

const PATH = 'amas/tool_access/decision';
const input = { agent_role: 'security_auditor', tool_name: 'run_pentest', input: { target: 'staging' } };
const requester = { sub: 'agent-42', scopes: ['agents:invoke'] };
const approver = { sub: 'alice', scopes: ['approvals:security'] };
const requirement = { approvers: ['approvals:security'], ttlSeconds: 900 };

const code = (c: OpaErrorCode) => (err: unknown) => isOpaError(err) && err.code === c;

const redis = useRedis('t');
const { clients } = redis;
const newRedis = () => redis.client();

const stores: [string, (now: () => number) => ApprovalStore][] = [
  ['memory store', (now) => createMemoryApprovalStore({ now })],
  ['redis store', () => createRedisApprovalStore({ redis: newRedis(), prefix: redis.prefix() })],
];

describe.each(stores)('approvals with the %s', (_name, makeStore) => {
  const setup = () => {
    const clock = { t: 1_700_000_000_000 };
    const events: ApprovalAuditEvent[] = [];
    const approvals = createApprovals({
      store: makeStore(() => clock.t),
      now: () => clock.t,
      onAudit: (e) => events.push(e),
    });
    return { clock, events, approvals };
  };

  it('request -> approve -> consume once, with an audit trail (who, when, why)', async () => {
    const { approvals, events, clock } = setup();
    const rec = await approvals.request({
      path: PATH,
      input,
      principal: requester,
      decisionId: 'd-1',
      approval: requirement,
    });
    expect(rec).toMatchObject({
      status: 'pending',
      principal: { sub: 'agent-42' },
      decisionId: 'd-1',
      approvers: ['approvals:security'],
    });
    clock.t += 1_000;
    const ok = await approvals.approve(rec.id, approver, 'CHG-42 approved');
    expect(ok).toMatchObject({
      status: 'approved',
      decidedBy: 'alice',
      reason: 'CHG-42 approved',
      expiresAt: clock.t + 900_000,
    });
    clock.t += 1_000;
    const used = await approvals.consume(rec.id, { path: PATH, input, principal: requester });
    expect(used.status).toBe('used');
    expect(used.audit.map((e) => [e.action, e.by])).toEqual([
      ['requested', 'agent-42'],
      ['approved', 'alice'],
      ['used', 'agent-42'],
    ]);
    expect(used.audit[1]?.reason).toBe('CHG-42 approved');
    expect(events.map((e) => e.action)).toEqual(['requested', 'approved', 'used']);
  });

  it('attack: double use is refused', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: requester, approval: requirement });
    await approvals.approve(rec.id, approver);
    await approvals.consume(rec.id, { path: PATH, input, principal: requester });
    await expect(approvals.consume(rec.id, { path: PATH, input, principal: requester })).rejects.toSatisfy(
      code('approval_already_used'),
    );
  });

  it('attack: concurrent uses of one approval: exactly one wins', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: requester, approval: requirement });
    await approvals.approve(rec.id, approver);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        approvals.consume(rec.id, { path: PATH, input, principal: requester }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('attack: an approval for another input is refused (hash binding)', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: requester, approval: requirement });
    await approvals.approve(rec.id, approver);
    const other = { ...input, input: { target: 'production' } };
    await expect(
      approvals.consume(rec.id, { path: PATH, input: other, principal: requester }),
    ).rejects.toSatisfy(code('approval_mismatch'));
    // Still usable for the right action.
    expect((await approvals.consume(rec.id, { path: PATH, input, principal: requester })).status).toBe(
      'used',
    );
  });

  it('attack: an approval for another path is refused', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: requester, approval: requirement });
    await approvals.approve(rec.id, approver);
    await expect(
      approvals.consume(rec.id, { path: 'other/path', input, principal: requester }),
    ).rejects.toSatisfy(code('approval_mismatch'));
  });

  it('attack: another principal cannot use the approval', async () => {
    const { approvals, events } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: requester, approval: requirement });
    await approvals.approve(rec.id, approver);
    await expect(
      approvals.consume(rec.id, { path: PATH, input, principal: { sub: 'agent-666' } }),
    ).rejects.toSatisfy(code('approval_mismatch'));
    expect(events.at(-1)).toMatchObject({ action: 'refused', by: 'agent-666', code: 'approval_mismatch' });
  });

  it('expiry holds: an approval is unusable after its TTL', async () => {
    const { approvals, clock } = setup();
    const rec = await approvals.request({
      path: PATH,
      input,
      principal: requester,
      approval: { ...requirement, ttlSeconds: 60 },
    });
    await approvals.approve(rec.id, approver);
    clock.t += 60_000;
    await expect(approvals.consume(rec.id, { path: PATH, input, principal: requester })).rejects.toSatisfy(
      code('approval_expired'),
    );
    const rec2 = await approvals.get(rec.id);
    expect(rec2 && approvals.view(rec2).status).toBe('expired');
  });

  it('a pending request expires if nobody decides in time', async () => {
    const { approvals, clock } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: requester, approval: requirement });
    clock.t += 3_600_000;
    await expect(approvals.approve(rec.id, approver)).rejects.toSatisfy(code('approval_expired'));
    expect(await approvals.listPending(approver)).toEqual([]);
  });

  it('a pending or denied request cannot be used', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: requester, approval: requirement });
    await expect(approvals.consume(rec.id, { path: PATH, input, principal: requester })).rejects.toSatisfy(
      code('approval_pending'),
    );
    await approvals.deny(rec.id, approver, 'not during the freeze');
    await expect(approvals.consume(rec.id, { path: PATH, input, principal: requester })).rejects.toSatisfy(
      code('approval_denied'),
    );
    await expect(approvals.approve(rec.id, approver)).rejects.toSatisfy(code('approval_already_decided'));
  });

  it('attack: an approver without the scope is refused', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: requester, approval: requirement });
    await expect(approvals.approve(rec.id, { sub: 'bob', scopes: ['approvals:admin'] })).rejects.toSatisfy(
      code('approval_forbidden'),
    );
    await expect(approvals.approve(rec.id, { sub: 'bob' })).rejects.toSatisfy(code('approval_forbidden'));
  });

  it('attack: the requester cannot approve its own request, even with the scope', async () => {
    const { approvals } = setup();
    const self = { sub: 'agent-42', scopes: ['approvals:security'] };
    const rec = await approvals.request({ path: PATH, input, principal: self, approval: requirement });
    await expect(approvals.approve(rec.id, self)).rejects.toSatisfy(code('approval_forbidden'));
  });

  it('attack: unknown and malformed ids are not found', async () => {
    const { approvals } = setup();
    for (const id of ['00000000-0000-0000-0000-000000000000', '../../etc', '*', '']) {
      await expect(approvals.consume(id, { path: PATH, input, principal: requester })).rejects.toSatisfy(
        code('approval_not_found'),
      );
      expect(await approvals.get(id)).toBeUndefined();
    }
  });

  it('lists pending requests only to approvers who may decide them', async () => {
    const { approvals } = setup();
    const rec = await approvals.request({ path: PATH, input, principal: requester, approval: requirement });
    expect((await approvals.listPending(approver)).map((r) => r.id)).toContain(rec.id);
    expect(await approvals.listPending({ sub: 'bob', scopes: ['approvals:admin'] })).toEqual([]);
    expect(await approvals.listPending(requester)).toEqual([]);
  });
});

describe('redis approval store: restarts and replicas', () => {
  it('nothing approved is lost when the service restarts (new client, new store)', async () => {
    const prefix = 'restart:';
    const a = createApprovals({ store: createRedisApprovalStore({ redis: newRedis(), prefix }) });
    const rec = await a.request({ path: PATH, input, principal: requester, approval: requirement });
    await a.approve(rec.id, approver, 'ok');
    const first = clients.pop() as Redis;
    await first.quit();
    const b = createApprovals({ store: createRedisApprovalStore({ redis: newRedis(), prefix }) });
    expect(await b.get(rec.id)).toMatchObject({
      status: 'approved',
      decidedBy: 'alice',
      reason: 'ok',
      input,
    });
    expect((await b.consume(rec.id, { path: PATH, input, principal: requester })).status).toBe('used');
  });

  it('two replicas racing to use one approval: exactly one wins', async () => {
    const prefix = 'race:';
    const r1 = createApprovals({ store: createRedisApprovalStore({ redis: newRedis(), prefix }) });
    const r2 = createApprovals({ store: createRedisApprovalStore({ redis: newRedis(), prefix }) });
    const rec = await r1.request({ path: PATH, input, principal: requester, approval: requirement });
    await r2.approve(rec.id, approver);
    const results = await Promise.allSettled([
      ...Array.from({ length: 10 }, () => r1.consume(rec.id, { path: PATH, input, principal: requester })),
      ...Array.from({ length: 10 }, () => r2.consume(rec.id, { path: PATH, input, principal: requester })),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('keeps input with empty arrays, big numbers and unicode intact', async () => {
    const a = createApprovals({ store: createRedisApprovalStore({ redis: newRedis(), prefix: 'json:' }) });
    const odd = { list: [], obj: {}, n: 1234567890123456, s: 'é✓\u0000' };
    const rec = await a.request({ path: PATH, input: odd, principal: requester, approval: requirement });
    expect((await a.get(rec.id))?.input).toEqual(odd);
  });

  it('a Redis outage during escalation is an unavailable answer (503), never an allow', async () => {
    const opa: OpaTestServer = await startOpaTestServer({ data: roleData });
    const dead = new Redis({
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    dead.on('error', () => undefined);
    clients.push(dead);
    const e = createEnforcer({
      url: opa.url,
      approvals: { store: createRedisApprovalStore({ redis: dead }) },
    });
    const a = await e.authorize({
      toolAccess: { agentRole: 'security_auditor', toolName: 'run_pentest' },
      principal: requester,
    });
    expect(a).toMatchObject({ outcome: 'unavailable', allowed: false, code: 'approval_unavailable' });
    const b = await e.authorize({
      toolAccess: { agentRole: 'security_auditor', toolName: 'run_pentest' },
      principal: requester,
      approvalId: '3b241101-e2bb-4255-8caf-4136c566a962',
    });
    expect(b).toMatchObject({ outcome: 'unavailable', allowed: false });
    e.close();
    await opa.close();
  });
});

describe('approvals: bounded waits', () => {
  it('a store that never answers is approval_unavailable after storeTimeoutMs, not a hang', async () => {
    const hanging: ApprovalStore = {
      create: () => new Promise(() => undefined),
      get: () => new Promise(() => undefined),
      listPending: () => new Promise(() => undefined),
      decide: () => new Promise(() => undefined),
      consume: () => new Promise(() => undefined),
    };
    const approvals = createApprovals({ store: hanging, storeTimeoutMs: 50 });
    await expect(
      approvals.request({ path: PATH, input, principal: requester, approval: requirement }),
    ).rejects.toSatisfy(code('approval_unavailable'));
    await expect(
      approvals.consume('3b241101-e2bb-4255-8caf-4136c566a962', { path: PATH, input, principal: requester }),
    ).rejects.toSatisfy(code('approval_unavailable'));
  });
});
