import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnforcer, type Enforcer } from '../src/enforcer.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import { evaluateToolAccess } from '../src/tool-access-policy.js';
import { fixtureData, roleData, table } from './helpers.js';

// The same table runs in `opa test` (policies/tool_access_policy_test.rego) on GitHub, against the
// Rego policy. Here it runs against the TypeScript twin, directly and through the test server.

const outcome = (d: { allow: boolean; escalate: boolean }) =>
  d.allow && !d.escalate
    ? 'allow'
    : !d.allow && d.escalate
      ? 'escalate'
      : !d.allow && !d.escalate
        ? 'deny'
        : 'invalid';

describe('decision table: evaluateToolAccess (the twin of tool_access_policy.rego)', () => {
  it('has enough cases to cover every role, operator and fail-closed path', () => {
    expect(table.cases.length).toBeGreaterThan(100);
    expect(new Set(table.cases.map((c) => c.name)).size).toBe(table.cases.length);
  });

  it.each(table.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const d = evaluateToolAccess(c.roles === 'fixture' ? fixtureData : roleData, c.input);
    expect(outcome(d)).toBe(c.expected);
    expect(d.reasons).toEqual(c.reasons);
    if (c.expected === 'escalate') expect(d.approval).toEqual(c.approval);
    else expect(d.approval).toBeUndefined();
  });
});

describe('decision table through HTTP: enforcer -> test server -> twin', () => {
  let shipped: OpaTestServer;
  let fixture: OpaTestServer;
  let enforcers: { shipped: Enforcer; fixture: Enforcer };

  beforeAll(async () => {
    shipped = await startOpaTestServer({ data: roleData });
    fixture = await startOpaTestServer({ data: fixtureData });
    const opts = { cache: false as const, breaker: false as const, timeoutMs: 2_000 };
    enforcers = {
      shipped: createEnforcer({ url: shipped.url, ...opts }),
      fixture: createEnforcer({ url: fixture.url, ...opts }),
    };
  });
  afterAll(async () => {
    enforcers.shipped.close();
    enforcers.fixture.close();
    await shipped.close();
    await fixture.close();
  });

  it('gives every case of the table the expected outcome, reasons and approval', async () => {
    for (const c of table.cases) {
      const enforcer = c.roles === 'fixture' ? enforcers.fixture : enforcers.shipped;
      const d = await enforcer.decide('amas/tool_access/decision', c.input);
      expect(d.outcome, c.name).toBe(c.expected);
      expect(d.reasons, c.name).toEqual(c.reasons);
      if (d.outcome === 'escalate') {
        expect(d.approval, c.name).toEqual({
          approvers: c.approval?.approvers,
          ttlSeconds: c.approval?.ttl_seconds,
        });
      }
    }
  });
});
