import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach } from 'vitest';
import { setupTelemetry } from '../src/setup.js';
import type { TelemetryHandle, TelemetryOptions } from '../src/types.js';

export interface Started {
  handle: TelemetryHandle;
  memory: InMemorySpanExporter;
  info: string[];
  warnings: string[];
  /** Flushes, then returns the finished spans. */
  spans(): Promise<ReadableSpan[]>;
}

const running: TelemetryHandle[] = [];
afterEach(async () => {
  for (const h of running.splice(0)) await h.shutdown();
});

/** Starts tracing into an in-memory exporter with an empty environment; shut down after each test. */
export function startTracing(options: TelemetryOptions = {}): Started {
  const memory = new InMemorySpanExporter();
  const info: string[] = [];
  const warnings: string[] = [];
  const handle = setupTelemetry({
    serviceName: 'test-service',
    exporter: memory,
    env: {},
    esmLoaderHook: false,
    logger: { info: (m) => info.push(m), warn: (m) => warnings.push(m) },
    ...options,
  });
  running.push(handle);
  return {
    handle,
    memory,
    info,
    warnings,
    async spans() {
      await handle.forceFlush();
      return memory.getFinishedSpans();
    },
  };
}

export function byName(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spans.find((s) => s.name === name);
  if (!found) throw new Error(`no span named ${name}; have ${spans.map((s) => s.name).join(', ')}`);
  return found;
}
