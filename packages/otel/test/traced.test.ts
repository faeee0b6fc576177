import { SpanStatusCode } from '@opentelemetry/api';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { traced } from '../src/with-span.js';
import { byName, startTracing } from './helpers.js';

// The test runner's transform does not lower standard decorators, so the classes are compiled here by the
// TypeScript compiler, as users' code is: standard (TC39) decorators, no experimentalDecorators.
function compile<T>(source: string): T {
  const { outputText, diagnostics } = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS },
    reportDiagnostics: true,
  });
  expect(diagnostics ?? []).toEqual([]);
  expect(outputText).toContain('__esDecorate');
  const module = { exports: {} as T };
  new Function('module', 'exports', 'traced', outputText)(module, module.exports, traced);
  return module.exports;
}

const { Policy, Sub } = compile<{
  Policy: new () => {
    decide(input: { tool: string }): Promise<string>;
    check(n: number): number;
    fail(): never;
    stream(): AsyncGenerator<number>;
  } & { prefix: string };
  Sub: new () => { check(n: number): number; decide(input: { tool: string }): Promise<string> };
}>(`
  class Policy {
    prefix = 'allow:';
    @traced()
    async decide(input) { await new Promise((r) => setTimeout(r, 1)); return this.prefix + input.tool; }
    @traced({ name: 'policy.check', attributes: (n) => ({ 'policy.n': n }) })
    check(n) { return n * 2; }
    @traced('policy.fail')
    fail() { throw new Error('nope'); }
    @traced()
    async *stream() { yield 1; yield 2; }
    @traced()
    static create() { return new Policy(); }
  }
  class Sub extends Policy {}
  module.exports = { Policy, Sub };
`);

describe('@traced()', () => {
  it('names the span ClassName.method and keeps `this`, arguments and the result', async () => {
    const t = startTracing();
    await expect(new Policy().decide({ tool: 'search' })).resolves.toBe('allow:search');
    const [span] = await t.spans();
    expect(span?.name).toBe('Policy.decide');
    expect(span?.ended).toBe(true);
  });

  it('takes a name and an attribute mapper', async () => {
    const t = startTracing();
    expect(new Policy().check(4)).toBe(8);
    expect(byName(await t.spans(), 'policy.check').attributes).toEqual({ 'policy.n': 4 });
  });

  it('records a throw and rethrows it', async () => {
    const t = startTracing();
    expect(() => new Policy().fail()).toThrow('nope');
    expect(byName(await t.spans(), 'policy.fail').status.code).toBe(SpanStatusCode.ERROR);
  });

  it('covers async generator methods and static methods', async () => {
    const t = startTracing();
    const seen: number[] = [];
    for await (const n of new Policy().stream()) seen.push(n);
    (Policy as unknown as { create(): unknown }).create();
    expect(seen).toEqual([1, 2]);
    const names = (await t.spans()).map((s) => s.name).sort();
    expect(names).toEqual(['Policy.create', 'Policy.stream']);
  });

  it('names spans after the class of the instance', async () => {
    const t = startTracing();
    new Sub().check(1);
    new Sub().decide.call(new Sub(), { tool: 'x' });
    await new Promise((r) => setTimeout(r, 5));
    const names = (await t.spans()).map((s) => s.name).sort();
    expect(names).toEqual(['Sub.decide', 'policy.check']);
  });

  it('refuses to decorate anything but a method', () => {
    const decorate = traced() as unknown as (t: unknown, c: { kind: string; name: string }) => unknown;
    expect(() => decorate(undefined, { kind: 'field', name: 'x' })).toThrow(/decorates class methods only/);
  });
});
