import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEnforcer, type EnforcerOptions } from '../src/enforcer.js';
import { isOpaError } from '../src/errors.js';
import { type OpaTestServer, startOpaTestServer, type TestFault } from '../src/test-server.js';
import type { DecisionLogEvent } from '../src/types.js';
import { collectUnhandled, freePort, roleData } from './helpers.js';

const scan = {
  agentRole: 'security_auditor',
  toolName: 'run_scan',
  input: { target: '10.0.0.5', mode: 'active' },
};
const read = { agentRole: 'code_reviewer', toolName: 'read_file', input: { path: 'a.ts' } };

describe('enforcer: outcomes of the tool-access policy', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer({
      data: roleData,
      rules: { 'x/bool': (i) => (i as { ok?: boolean }).ok === true, 'x/undef': () => undefined },
    });
  });
  afterAll(() => opa.close());

  it('allow: allowed is true, with OPA decision_id', async () => {
    const e = createEnforcer({ url: opa.url });
    const d = await e.checkToolAccess(read);
    expect(d).toMatchObject({ outcome: 'allow', allowed: true, reasons: [], cached: false });
    expect(d.decisionId).toMatch(/^[0-9a-f-]{36}$/);
    e.close();
  });

  it('deny: with the policy reasons', async () => {
    const e = createEnforcer({ url: opa.url });
    const d = await e.checkToolAccess({ agentRole: 'code_reviewer', toolName: 'delete_file' });
    expect(d).toMatchObject({ outcome: 'deny', allowed: false, reasons: ['tool_not_allowed'] });
    e.close();
  });

  it('escalate: with who may approve and for how long', async () => {
    const e = createEnforcer({ url: opa.url });
    const d = await e.checkToolAccess(scan);
    expect(d).toMatchObject({
      outcome: 'escalate',
      allowed: false,
      reasons: ['approval_required'],
      approval: { approvers: ['approvals:security'], ttlSeconds: 900 },
    });
    e.close();
  });

  it('undefined: a rule without a result is a denial, never an allow', async () => {
    const e = createEnforcer({ url: opa.url });
    const d = await e.decide('x/undef', {});
    expect(d).toMatchObject({ outcome: 'undefined', allowed: false, reasons: ['policy_undefined'] });
    e.close();
  });

  it('reads boolean rules on generic paths', async () => {
    const e = createEnforcer({ url: opa.url });
    expect((await e.decide('x/bool', { ok: true })).outcome).toBe('allow');
    expect((await e.decide('x/bool', { ok: false })).outcome).toBe('deny');
    e.close();
  });

  it('refuses malformed tool requests with input_invalid before asking OPA', async () => {
    const e = createEnforcer({ url: opa.url });
    opa.resetStats();
    for (const bad of [
      { agentRole: '', toolName: 'x' },
      { agentRole: 'a', toolName: 7 },
      { agentRole: 'a', toolName: 'b', input: ['x'] },
      { agentRole: 'a', toolName: 'b', subject: { sub: 1 } },
    ]) {
      await expect(e.checkToolAccess(bad as never)).rejects.toSatisfy(
        (err) => isOpaError(err) && err.code === 'input_invalid',
      );
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(e.decide('x/bool', cyclic)).rejects.toSatisfy(
      (err) => isOpaError(err) && err.code === 'input_invalid',
    );
    expect(opa.stats().data).toBe(0);
    e.close();
  });

  it('validates options at the factory, naming the option', () => {
    const bad: [unknown, RegExp][] = [
      [{}, /"url"/],
      [{ url: opa.url, cache: { ttlMs: -1 } }, /option "cache/],
      [{ url: opa.url, breaker: { failureThreshold: 0 } }, /option "breaker/],
      [{ url: opa.url, decisionLog: { onDecision: 'log' } }, /option "decisionLog.onDecision"/],
      [{ url: opa.url, toolAccessPath: '../x' }, /option "toolAccessPath"/],
    ];
    for (const [opts, re] of bad) {
      expect(() => createEnforcer(opts as EnforcerOptions)).toThrow(re);
    }
  });
});

describe('enforcer: every fault ends in a denial within the timeout', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer({ data: roleData });
  });
  afterEach(() => opa.fault(null));
  afterAll(() => opa.close());

  const cases: [string, TestFault, string][] = [
    ['OPA down (connection refused)', { kind: 'down' }, 'down'],
    ['OPA slow (over the timeout)', { kind: 'slow', delayMs: 3_000 }, 'timeout'],
    ['500 with an evaluation error', { kind: 'error500' }, 'http_error'],
    ['400 invalid_parameter', { kind: 'error400' }, 'http_error'],
    ['garbage body', { kind: 'garbage' }, 'malformed'],
    ['connection reset mid-body', { kind: 'reset' }, 'malformed'],
    ['wrong result shape', { kind: 'wrong_shape' }, 'unexpected_result'],
    ['oversized body', { kind: 'huge' }, 'too_large'],
  ];

  it.each(cases)('%s', async (_name, fault, kind) => {
    await opa.fault(fault);
    const e = createEnforcer({ url: opa.url, timeoutMs: 150, breaker: false, cache: false });
    const unhandled = await collectUnhandled(async () => {
      const t0 = performance.now();
      const d = await e.checkToolAccess(read);
      const elapsed = performance.now() - t0;
      expect(d.allowed).toBe(false);
      expect(d).toMatchObject({ outcome: 'unavailable', reasons: ['policy_unavailable'], cause: { kind } });
      expect(d.outcome === 'unavailable' && d.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      // Generous bound: the deadline is 150 ms; the point is that nothing hangs.
      expect(elapsed).toBeLessThan(2_000);
    });
    expect(unhandled).toEqual([]);
    e.close();
  });

  it('an unreachable port (nothing ever listened) is a denial too', async () => {
    const e = createEnforcer({ url: `http://127.0.0.1:${await freePort()}`, timeoutMs: 150 });
    expect(await e.checkToolAccess(read)).toMatchObject({ outcome: 'unavailable', cause: { kind: 'down' } });
    e.close();
  });

  it('falls back to allow only when the call says so, and marks it', async () => {
    await opa.fault({ kind: 'error500' });
    const e = createEnforcer({ url: opa.url, breaker: false });
    expect((await e.checkToolAccess(read)).allowed).toBe(false);
    const d = await e.checkToolAccess(read, { fallback: 'allow' });
    expect(d).toMatchObject({
      outcome: 'allow',
      allowed: true,
      reasons: ['fallback_allow'],
      fallback: { kind: 'http_error' },
    });
    e.close();
  });

  it('never caches an unavailable result', async () => {
    await opa.fault({ kind: 'error500', times: 1 });
    const e = createEnforcer({ url: opa.url, breaker: false, retries: 0 });
    expect((await e.checkToolAccess(read)).outcome).toBe('unavailable');
    const d = await e.checkToolAccess(read);
    expect(d).toMatchObject({ outcome: 'allow', cached: false });
    e.close();
  });
});

describe('enforcer: circuit breaker', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer({ data: roleData });
  });
  afterEach(() => opa.fault(null));
  afterAll(() => opa.close());

  it('opens after consecutive failures, stops sending requests, and answers fast', async () => {
    await opa.fault({ kind: 'error500' });
    let t = 1_000_000;
    const e = createEnforcer({
      url: opa.url,
      breaker: { failureThreshold: 3, openMs: 5_000 },
      cache: false,
      retries: 0,
      now: () => t,
    });
    opa.resetStats();
    for (let i = 0; i < 3; i++) await e.checkToolAccess(read);
    expect(opa.stats().data).toBe(3);
    expect(e.breakerState()).toBe('open');
    const t0 = performance.now();
    const n = 2_000;
    for (let i = 0; i < n; i++) {
      const d = await e.checkToolAccess(read);
      expect(d.outcome).toBe('unavailable');
    }
    const perCall = (performance.now() - t0) / n;
    expect(opa.stats().data).toBe(3);
    // Generous bound (the benchmark measures it): far below a refused connection's ~300 µs.
    expect(perCall).toBeLessThan(1);
    const d = await e.checkToolAccess(read);
    expect(d).toMatchObject({
      outcome: 'unavailable',
      cause: { kind: 'breaker_open' },
      retryAfterSeconds: 5,
    });
    t += 5_000;
    await opa.fault(null);
    expect((await e.checkToolAccess(read)).outcome).toBe('allow');
    expect(e.breakerState()).toBe('closed');
    expect(opa.stats().data).toBe(4);
    e.close();
  });

  it('lets one probe through when half open; a failing probe reopens', async () => {
    await opa.fault({ kind: 'slow', delayMs: 400 });
    let t = 0;
    const e = createEnforcer({
      url: opa.url,
      breaker: { failureThreshold: 1, openMs: 1_000 },
      timeoutMs: 100,
      cache: false,
      retries: 0,
      now: () => t,
    });
    await e.checkToolAccess(read);
    expect(e.breakerState()).toBe('open');
    t += 1_000;
    opa.resetStats();
    // Distinct inputs, so that coalescing does not merge them into the probe.
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => e.checkToolAccess({ ...read, input: { path: `f${i}` } })),
    );
    expect(opa.stats().data).toBe(1);
    expect(
      results.filter((r) => r.outcome === 'unavailable' && r.cause.kind === 'breaker_open'),
    ).toHaveLength(19);
    expect(e.breakerState()).toBe('open');
    e.close();
  });

  it('does not open on 400 answers (input problems, not an outage)', async () => {
    await opa.fault({ kind: 'error400' });
    const e = createEnforcer({ url: opa.url, breaker: { failureThreshold: 2 }, cache: false });
    for (let i = 0; i < 5; i++) await e.checkToolAccess(read);
    expect(e.breakerState()).toBe('closed');
    e.close();
  });
});

describe('enforcer: decision cache and coalescing', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer({ data: roleData });
  });
  afterAll(() => opa.close());

  it('1,000 concurrent identical queries reach OPA once', async () => {
    const e = createEnforcer({ url: opa.url, cache: false });
    opa.resetStats();
    const all = await Promise.all(Array.from({ length: 1_000 }, () => e.checkToolAccess(read)));
    expect(opa.stats().data).toBe(1);
    expect(all.every((d) => d.outcome === 'allow')).toBe(true);
    e.close();
  });

  it('serves from the cache within the TTL, keyed by a stable hash (key order does not matter)', async () => {
    let t = 0;
    const e = createEnforcer({ url: opa.url, cache: { ttlMs: 1_000 }, now: () => t });
    opa.resetStats();
    await e.decide('amas/tool_access/decision', {
      agent_role: 'admin',
      tool_name: 'read_file',
      input: { a: 1, b: 2 },
    });
    const again = await e.decide('amas/tool_access/decision', {
      input: { b: 2, a: 1 },
      tool_name: 'read_file',
      agent_role: 'admin',
    });
    expect(again).toMatchObject({ outcome: 'allow', cached: true });
    expect(opa.stats().data).toBe(1);
    t += 1_001;
    expect(
      await e.decide('amas/tool_access/decision', {
        agent_role: 'admin',
        tool_name: 'read_file',
        input: { a: 1, b: 2 },
      }),
    ).toMatchObject({ cached: false });
    expect(opa.stats().data).toBe(2);
    e.close();
  });

  it('keeps at most maxEntries decisions', async () => {
    const e = createEnforcer({ url: opa.url, cache: { ttlMs: 60_000, maxEntries: 2 } });
    for (const p of ['a', 'b', 'c']) await e.checkToolAccess({ ...read, input: { path: p } });
    opa.resetStats();
    await e.checkToolAccess({ ...read, input: { path: 'a' } });
    expect(opa.stats().data).toBe(1);
    await e.checkToolAccess({ ...read, input: { path: 'c' } });
    expect(opa.stats().data).toBe(1);
    e.close();
  });
});

describe('enforcer: decision log and spans', () => {
  let opa: OpaTestServer;
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  beforeAll(async () => {
    trace.setGlobalTracerProvider(provider);
    opa = await startOpaTestServer({ data: roleData, bundles: { amas: 'rev-7' } });
  });
  afterAll(async () => {
    trace.disable();
    await opa.close();
  });

  it('emits one event per decision with OPA decision-log fields, without the input by default', async () => {
    const events: DecisionLogEvent[] = [];
    const e = createEnforcer({
      url: opa.url,
      provenance: true,
      decisionLog: { onDecision: (ev) => events.push(ev), labels: { app: 'gw' }, requestedBy: 'gateway-1' },
    });
    const d = await e.checkToolAccess({ ...read, subject: { sub: 'agent-42' } });
    await e.checkToolAccess({ ...read, subject: { sub: 'agent-42' } });
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      decision_id: d.decisionId,
      path: 'amas/tool_access/decision',
      outcome: 'allow',
      bundles: { amas: { revision: 'rev-7' } },
      labels: { app: 'gw' },
      requested_by: 'gateway-1',
      cached: false,
      fallback: false,
    });
    expect(events[0]?.input).toBeUndefined();
    expect(events[0]?.input_hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(events[1]).toMatchObject({ cached: true, input_hash: events[0]?.input_hash });
    expect(JSON.stringify(events)).not.toContain('agent-42');
    e.close();
  });

  it('a throwing log sink does not change the decision', async () => {
    const e = createEnforcer({
      url: opa.url,
      decisionLog: {
        onDecision: () => {
          throw new Error('sink down');
        },
      },
    });
    expect((await e.checkToolAccess(read)).outcome).toBe('allow');
    e.close();
  });

  it('records amas.opa.decide spans with path, outcome, decision_id and cache hit', async () => {
    exporter.reset();
    const e = createEnforcer({ url: opa.url });
    const d = await e.checkToolAccess(scan);
    await e.checkToolAccess(scan);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['amas.opa.decide', 'amas.opa.decide']);
    expect(spans[0]?.attributes).toMatchObject({
      'amas.opa.path': 'amas/tool_access/decision',
      'amas.opa.outcome': 'escalate',
      'amas.opa.decision_id': d.decisionId,
      'amas.opa.cache_hit': false,
    });
    expect(spans[1]?.attributes['amas.opa.cache_hit']).toBe(true);
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain('10.0.0.5');
    e.close();
  });
});

describe('enforcer: a client that throws', () => {
  it('is a denial, and a throwing probe does not leave the breaker stuck', async () => {
    let t = 0;
    let calls = 0;
    const client = {
      options: {},
      evaluate: async () => ({ ok: true as const, defined: true, result: true }),
      evaluateJson: async () => {
        calls++;
        if (calls <= 2) throw new Error('boom');
        return { ok: true as const, defined: true, result: true };
      },
      health: async () => ({ healthy: true }),
      close: () => undefined,
    };
    const e = createEnforcer({
      client: client as never,
      breaker: { failureThreshold: 1, openMs: 100 },
      cache: false,
      now: () => t,
    });
    expect(await e.decide('x/y', {})).toMatchObject({ outcome: 'unavailable', cause: { kind: 'malformed' } });
    expect(e.breakerState()).toBe('open');
    t += 100;
    expect(await e.decide('x/y', {})).toMatchObject({ outcome: 'unavailable' });
    t += 100;
    expect(await e.decide('x/y', {})).toMatchObject({ outcome: 'allow' });
    expect(e.breakerState()).toBe('closed');
  });
});
