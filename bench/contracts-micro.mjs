// Checks per second of @amas/contracts with the memory store, side by side with the floor of the work
// and with zod, in one process. Run by contracts.bench.mjs as `node --expose-gc contracts-micro.mjs`;
// with `--traced`, an OpenTelemetry SDK records every span first (BatchSpanProcessor, an exporter that
// drops the batches), to show what tracing costs.
//
// Fairness: every case checks the same input object through a loop compiled from the same source (so
// each case has its own inline caches and none shares a call site with another), after a warm-up; the
// cases take turns within each round, in a rotated order, with a full GC before each turn so that no
// case pays for another's garbage; a ratio is the median over rounds of (case / floor in that round).
import { createRegistry } from '@amas/contracts';
import { contract, floor, input, invalidInputs, PRINCIPALS, zodCheck } from './contracts-cases.mjs';

const DURATION = Number(process.env.BENCH_DURATION ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const traced = process.argv.includes('--traced');
const gc = globalThis.gc;
if (typeof gc !== 'function') throw new Error('run with node --expose-gc');

let provider;
if (traced) {
  const { trace } = await import('@opentelemetry/api');
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const exporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
  provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
}

const memory = createRegistry({ contracts: [contract] });
const action = (tool, i) => ({ role: 'code_reviewer', tool, input, principal: PRINCIPALS[i % 1000] });

// The comparison means something only if every case accepts and refuses the same inputs.
for (const data of [input, ...invalidInputs]) {
  const expected = data === input;
  const answers = [
    floor('code_reviewer', 'search_code', data),
    zodCheck('code_reviewer', 'search_code', data),
    (await memory.check({ ...action('search_code', 0), input: data })).allowed,
    (await memory.check({ ...action('search_budgeted', 0), input: data })).allowed,
  ];
  if (answers.some((a) => a !== expected)) {
    throw new Error(`cases disagree on ${JSON.stringify(data)}: ${answers}`);
  }
}

const cases = [
  { name: 'floor: ajv `validate` + `Map` lookup', fn: () => floor('code_reviewer', 'search_code', input) },
  {
    name: 'floor, awaited (what an async API costs alone)',
    awaited: true,
    fn: () => Promise.resolve({ allowed: floor('code_reviewer', 'search_code', input) }),
  },
  { name: 'zod `safeParse` + `Map` lookup', fn: () => zodCheck('code_reviewer', 'search_code', input) },
  { name: '`check`, no budget', awaited: true, fn: (i) => memory.check(action('search_code', i)) },
  {
    name: '`check`, 2 budgets, memory store',
    awaited: true,
    fn: (i) => memory.check(action('search_budgeted', i)),
  },
].filter((c) => !traced || !c.name.startsWith('zod'));
if (traced) for (const c of cases) if (c.name.startsWith('`check`')) c.name += ', SDK recording';

// One loop per case from the same source; only `await` differs. In the traced run the loop yields to
// the event loop after every 1,000 calls, as a server does between requests, so the span processor's
// timers run.
const loopSource = (awaited) => `
  return (async () => {
    let n = 0;
    while (performance.now() < end) {
      for (let i = 0; i < 1000; i++) {
        const r = ${awaited ? 'await fn(i)' : 'fn(i)'};
        if (${awaited ? 'r.allowed !== true' : 'r !== true'}) throw new Error('unexpected deny');
      }
      n += 1000;
      ${traced ? 'await new Promise((resolve) => setImmediate(resolve));' : ''}
    }
    return n;
  })();`;
for (const c of cases) {
  c.loop = new Function('fn', 'end', loopSource(c.awaited === true));
  c.rates = [];
}

// Each turn is timed twice: by the wall clock, and by this process's CPU time, which on a shared
// machine does not count the time other processes held the cores.
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const turn = async (c, seconds) => {
  gc();
  const cpu = cpuSeconds();
  const started = performance.now();
  const n = await c.loop(c.fn, started + seconds * 1000);
  return { wall: n / ((performance.now() - started) / 1000), cpu: n / (cpuSeconds() - cpu) };
};

for (const c of cases) await turn(c, Math.min(1, DURATION));
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < cases.length; k++) {
    const c = cases[(round + k) % cases.length];
    c.rates.push(await turn(c, DURATION));
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const floorRates = cases[0].rates;
/** The median over rounds of (case / floor in the same round), and the lowest and highest of them. */
const ratio = (c, clock) => {
  const r = c.rates.map((rate, i) => rate[clock] / floorRates[i][clock]);
  return { median: median(r), low: Math.min(...r), high: Math.max(...r) };
};
console.log(
  `node ${process.version}, ${DURATION}s per turn, ${ROUNDS} rounds, cases interleaved${traced ? ', OpenTelemetry SDK recording every span' : ''}`,
);
console.log('\n| case | checks/s (CPU time) | vs floor | rounds | vs floor, wall clock |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const c of cases) {
  const cpu = ratio(c, 'cpu');
  const wall = ratio(c, 'wall');
  console.log(
    `| ${c.name} | ${fmt(median(c.rates.map((r) => r.cpu)))} | ${cpu.median.toFixed(2)}x | ${cpu.low.toFixed(2)}-${cpu.high.toFixed(2)}x | ${wall.median.toFixed(2)}x |`,
  );
}
if (!traced) {
  console.log('\ntargets: >= 0.50x the floor, >= 1,000,000 checks/s with the memory store');
  for (const c of cases.filter((x) => x.name.startsWith('`check`'))) {
    const r = ratio(c, 'cpu').median;
    const rate = median(c.rates.map((x) => x.cpu));
    console.log(
      `  ${c.name}: ${r.toFixed(2)}x the floor (${r >= 0.5 ? 'met' : 'missed'}), ${fmt(rate)} checks/s (${rate >= 1e6 ? 'met' : 'missed'})`,
    );
  }
}
await provider?.shutdown();
