import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { OPAClient } from '@open-policy-agent/opa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEnforcer } from '../src/enforcer.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import { collectUnhandled } from './helpers.js';

// The official client (@open-policy-agent/opa 2.0) and ours, pointed at the same server, to show
// where they differ. Each `official` expectation records the official client's behaviour.

const probe = resolve(import.meta.dirname, 'fixtures', 'official-probe.mjs');

describe('@open-policy-agent/opa vs @amas/opa on the same server', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer({
      rules: { 'x/undef': () => undefined, 'x/allow': () => true, 'system/main': () => false },
    });
  });
  afterEach(() => opa.fault(null));
  afterAll(() => opa.close());

  it('undefined decision: official returns undefined without a signal; ours says "undefined" and denies', async () => {
    const official = new OPAClient(opa.url);
    expect(await official.evaluate('x/undef', {})).toBeUndefined();
    const ours = createEnforcer({ url: opa.url });
    expect(await ours.decide('x/undef', {})).toMatchObject({ outcome: 'undefined', allowed: false });
    ours.close();
  });

  it('default decision false: official throws a plain string; ours is a typed deny', async () => {
    const official = new OPAClient(opa.url);
    const thrown = await official.evaluateDefault({}).then(
      () => 'no throw',
      (err: unknown) => err,
    );
    expect(typeof thrown).toBe('string');
    const ours = createEnforcer({ url: opa.url });
    expect(await ours.decide('system/main', {})).toMatchObject({ outcome: 'deny', allowed: false });
    ours.close();
  });

  it('wrong result shape: official hands it over as is; ours refuses it (unavailable, deny)', async () => {
    await opa.fault({ kind: 'wrong_shape' });
    const official = new OPAClient(opa.url);
    expect(await official.evaluate('x/allow', {})).toBe('yes');
    const ours = createEnforcer({ url: opa.url, breaker: false });
    expect(await ours.decide('x/allow', {})).toMatchObject({
      outcome: 'unavailable',
      cause: { kind: 'unexpected_result' },
    });
    ours.close();
  });

  it('slow OPA: official has no timeout by default; ours denies at its deadline', async () => {
    await opa.fault({ kind: 'slow', delayMs: 1_500 });
    const official = new OPAClient(opa.url);
    const pending = official.evaluate('x/allow', {}).then(() => 'answered');
    const after300 = await Promise.race([
      pending,
      new Promise((r) => setTimeout(() => r('still waiting'), 300)),
    ]);
    expect(after300).toBe('still waiting');
    const ours = createEnforcer({ url: opa.url, timeoutMs: 100, breaker: false });
    expect(await ours.decide('x/allow', {})).toMatchObject({
      outcome: 'unavailable',
      cause: { kind: 'timeout' },
    });
    ours.close();
    await pending;
  });

  it.each([
    ['garbage body', 'garbage'],
    ['connection reset mid-body', 'reset'],
  ] as const)(
    '%s: the official client leaks an unhandled rejection that ends the process; ours does not',
    async (_name, kind) => {
      await opa.fault({ kind });
      const child = await new Promise<{ status: number | null; stdout: string; stderr: string }>((res) => {
        const p = spawn(process.execPath, [probe, opa.url, 'x/allow'], { cwd: import.meta.dirname });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d: Buffer) => {
          stdout += d;
        });
        p.stderr.on('data', (d: Buffer) => {
          stderr += d;
        });
        p.on('close', (status) => res({ status, stdout, stderr }));
      });
      // It caught the error it was given, and the process still ended with an unhandled rejection.
      expect(child.stdout).toContain('caught');
      expect(child.status).toBe(1);
      expect(child.stderr).toMatch(/SyntaxError|terminated/);

      const ours = createEnforcer({ url: opa.url, breaker: false });
      const unhandled = await collectUnhandled(async () => {
        expect(await ours.decide('x/allow', {})).toMatchObject({
          outcome: 'unavailable',
          cause: { kind: 'malformed' },
        });
      });
      expect(unhandled).toEqual([]);
      ours.close();
    },
  );
});
