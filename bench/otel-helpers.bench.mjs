// What withSpan() and @traced-style wrapping cost per call, against calling the function directly:
// recorded (sampled) spans, an unsampled root, and a call under an already unsampled parent (the case
// "near free when not sampled" is about). In-process, no network: spans go to an exporter that drops them.
//
//   pnpm --filter @amas/bench bench otel-helpers        (BENCH_DURATION seconds per case, default 1)

import { setupTelemetry, withSpan } from '@amas/otel';
import { context, propagation, ROOT_CONTEXT } from '@opentelemetry/api';

const seconds = Number(process.env.BENCH_DURATION ?? 1);
const drop = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };

function work(a, b) {
  return a + b;
}

function measure(fn) {
  let calls = 0;
  let sink = 0;
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() < end) {
    for (let i = 0; i < 1000; i++) sink += fn(i, 1);
    calls += 1000;
  }
  if (sink === -1) console.log(sink);
  return (seconds * 1e9) / calls;
}

const rows = [];
const run = (label, ratio, parentHeaders, fn) => {
  const handle = setupTelemetry({ exporter: drop, samplerRatio: ratio, logger: false, env: {} });
  // Extracted once tracing runs: before, the global propagator is the API's no-op.
  const parent = propagation.extract(ROOT_CONTEXT, parentHeaders);
  measure(fn); // warm-up
  const ns = context.with(parent, () => measure(fn));
  rows.push({ case: label, 'ns/call': ns.toFixed(0) });
  return handle.shutdown();
};

const unsampledParent = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' };
const wrapped = withSpan('bench.work', work, { attributes: (a, b) => ({ 'bench.a': a, 'bench.b': b }) });

await run('direct call', 1, {}, work);
await run('withSpan, sampled (span recorded and exported)', 1, {}, wrapped);
await run('withSpan, unsampled root (ratio 0)', 0, {}, wrapped);
await run('withSpan, under an unsampled parent', 1, unsampledParent, wrapped);
console.table(rows);
