import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type OtlpReceiver, startOtlpReceiver } from '../src/testing.js';
import { fixtureProcesses } from './fixture-processes.js';

const run = fixtureProcesses();
let receiver: OtlpReceiver | undefined;
let blackhole: Server | undefined;

afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
  blackhole?.close();
  blackhole = undefined;
});

/** A collector that accepts connections and never answers. */
async function deadCollector(): Promise<string> {
  blackhole = await new Promise<Server>((resolve) => {
    const s = createServer(() => {}).listen(0, '127.0.0.1', () => resolve(s));
  });
  return `http://127.0.0.1:${(blackhole.address() as { port: number }).port}`;
}

/** The spans the process said it lost, from its warnings. */
function reportedLost(stderr: string): number {
  let lost = 0;
  for (const m of stderr.matchAll(
    /(\d+) spans (?:were not exported before the process ended|were dropped because the queue was full|could not be exported)/g,
  )) {
    lost += Number(m[1]);
  }
  return lost;
}

describe('spans lost on the way out are counted, never silent', () => {
  it('beforeExit with a queue smaller than the burst: received + reported = made', async () => {
    receiver = await startOtlpReceiver();
    const made = 40;
    const child = run(['spans-then-exit.mjs'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.baseUrl,
      OTEL_BSP_MAX_QUEUE_SIZE: '4',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '4',
      FIXTURE_SPANS: String(made),
    });
    expect(await child.exited).toEqual({ code: 0, signal: null });
    const lost = reportedLost(child.stderr());
    expect(lost).toBeGreaterThan(0);
    expect(receiver.spans.length + lost).toBe(made);
    expect(child.stderr()).toMatch(/spans were not exported before the process ended/);
  });

  it('beforeExit with a collector that never answers: every span is reported', async () => {
    const made = 12;
    const child = run(['spans-then-exit.mjs'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: await deadCollector(),
      OTEL_EXPORTER_OTLP_TIMEOUT: '500',
      FIXTURE_SPANS: String(made),
    });
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(reportedLost(child.stderr())).toBe(made);
  });

  it('process.exit() without shutdown: the spans it threw away are reported', async () => {
    receiver = await startOtlpReceiver();
    const child = run(['exit-abruptly.mjs'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.baseUrl,
      FIXTURE_SPANS: '9',
    });
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(receiver.spans).toHaveLength(0);
    expect(child.stderr()).toMatch(/9 spans were not exported before the process ended/);
  });

  it('SIGTERM with a collector that never answers: the process still dies by the signal, and says what it lost', async () => {
    const child = run(['--import', '@amas/otel/register', 'server.mjs'], {
      OTEL_SERVICE_NAME: 'fixture',
      OTEL_EXPORTER_OTLP_ENDPOINT: await deadCollector(),
      OTEL_BSP_SCHEDULE_DELAY: '60000',
    });
    const { port } = await child.firstLine;
    for (let i = 0; i < 3; i++) await (await fetch(`http://127.0.0.1:${port}/work/${i}`)).text();
    child.proc.kill('SIGTERM');
    expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(child.stderr()).toMatch(/flush failed/);
    expect(reportedLost(child.stderr())).toBe(3);
  });

  it('says nothing about loss when every span arrived', async () => {
    receiver = await startOtlpReceiver();
    const child = run(['spans-then-exit.mjs'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.baseUrl,
      FIXTURE_SPANS: '20',
    });
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(receiver.spans).toHaveLength(20);
    expect(child.stderr()).not.toMatch(/warning/);
  });
});

describe('the register entry loaded twice (--require and --import in one process)', () => {
  it('starts tracing once: one start line, one signal handler, each span delivered once', async () => {
    receiver = await startOtlpReceiver();
    const child = run(['--require', '@amas/otel/register', '--import', '@amas/otel/register', 'server.mjs'], {
      OTEL_SERVICE_NAME: 'twice',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.baseUrl,
      OTEL_BSP_SCHEDULE_DELAY: '60000',
    });
    const { port } = await child.firstLine;
    for (let i = 0; i < 4; i++) await (await fetch(`http://127.0.0.1:${port}/work/${i}`)).text();
    child.proc.kill('SIGTERM');
    expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(child.stderr().match(/tracing on/g)).toHaveLength(1);
    expect(child.stderr()).not.toMatch(/warning/);
    expect(receiver.spans).toHaveLength(4);
    expect(new Set(receiver.spans.map((s) => s.spanId)).size).toBe(4);
  });
});
