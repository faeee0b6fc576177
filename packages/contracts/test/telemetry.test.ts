import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../src/registry.js';
import type { BudgetStore } from '../src/types.js';
import { sampleContract } from './helpers/contracts.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
});

describe('spans', () => {
  it('records amas.contracts.check with role, tool, version and outcome, and no principal or input', async () => {
    exporter.reset();
    const r = createRegistry({ contracts: [sampleContract()] });
    await r.check({
      role: 'reader',
      tool: 'read_file',
      input: { path: 'secret-path' },
      principal: 'alice@example.com',
    });
    await r.check({ role: 'reader', tool: 'read_file', input: {}, principal: 'alice@example.com' });
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['amas.contracts.check', 'amas.contracts.check']);
    expect(spans[0]!.attributes).toEqual({
      'amas.contracts.role': 'reader',
      'amas.contracts.tool': 'read_file',
      'amas.contracts.outcome': 'allowed',
      'amas.contracts.version': '2.1.0',
    });
    expect(spans[1]!.attributes['amas.contracts.outcome']).toBe('input_invalid');
    const text = JSON.stringify(spans.map((s) => s.attributes));
    expect(text).not.toContain('alice');
    expect(text).not.toContain('secret-path');
  });

  it('names the spent budget, and marks a store outage as an error', async () => {
    exporter.reset();
    const r = createRegistry({ contracts: [sampleContract()] });
    for (let i = 0; i < 6; i++)
      await r.check({ role: 'reader', tool: 'read_file', input: { path: 'a' }, principal: 'p' });
    const last = exporter.getFinishedSpans().at(-1)!;
    expect(last.attributes['amas.contracts.outcome']).toBe('budget_exhausted');
    expect(last.attributes['amas.contracts.budget']).toBe('file.read');

    exporter.reset();
    const fail = () => Promise.reject(new Error('ECONNREFUSED 10.0.0.1:6379'));
    const down: BudgetStore = { consume: fail, peek: fail };
    const r2 = createRegistry({ contracts: [sampleContract()], store: down });
    await r2.check({ role: 'reader', tool: 'read_file', input: { path: 'a' }, principal: 'p' });
    const span = exporter.getFinishedSpans()[0]!;
    expect(span.status).toEqual({ code: 2, message: 'budget_store_unavailable' });
    expect(JSON.stringify({ a: span.attributes, e: span.events, s: span.status })).not.toContain('10.0.0.1');
  });

  it('clips long unknown role and tool names', async () => {
    exporter.reset();
    const r = createRegistry({ contracts: [sampleContract()] });
    await r.check({ role: 'r'.repeat(10_000), tool: 't', input: {} });
    const role = exporter.getFinishedSpans()[0]!.attributes['amas.contracts.role'] as string;
    expect(role.length).toBeLessThanOrEqual(65);
  });

  it('records amas.contracts.check_output', () => {
    exporter.reset();
    const r = createRegistry({ contracts: [sampleContract()] });
    r.checkOutput({ role: 'reader', tool: 'read_file', output: { content: 1 } });
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('amas.contracts.check_output');
    expect(span?.attributes['amas.contracts.outcome']).toBe('output_invalid');
  });
});
