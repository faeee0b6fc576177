import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../src/registry.js';
import { sampleContract } from './helpers/contracts.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

afterAll(async () => {
  await provider.shutdown();
  trace.disable();
});

describe('spans when the SDK starts after the registry', () => {
  it('records amas.contracts.check once an SDK is registered, though checks before it skipped the span', async () => {
    const r = createRegistry({ contracts: [sampleContract()] });
    const action = { role: 'reader', tool: 'read_file', input: { path: 'a' }, principal: 'p' };
    expect((await r.check(action)).code).toBe('allowed');
    expect(exporter.getFinishedSpans()).toEqual([]);

    trace.setGlobalTracerProvider(provider);
    expect((await r.check(action)).code).toBe('allowed');
    expect((await r.check({ ...action, tool: 'nope' })).code).toBe('tool_not_allowed');
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['amas.contracts.check', 'amas.contracts.check']);
    expect(spans[0]!.attributes).toEqual({
      'amas.contracts.role': 'reader',
      'amas.contracts.tool': 'read_file',
      'amas.contracts.outcome': 'allowed',
      'amas.contracts.version': '2.1.0',
    });
    expect(spans[1]!.attributes['amas.contracts.outcome']).toBe('tool_not_allowed');
  });
});
