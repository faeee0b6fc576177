// @amas/contracts: checks per second for a typical contract, side by side with the floor of the work
// (a precompiled ajv validate plus a Map lookup) and with an equivalent zod schema; then the Redis store's
// checks per second and latency percentiles at 50 concurrent callers against a real redis-server.
//
//   pnpm --filter @amas/bench bench contracts          (BENCH_DURATION=seconds per round, default 2)
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createRedisBudgetStore, createRegistry } from '@amas/contracts';
import { Ajv } from 'ajv';
import { Redis } from 'ioredis';
import * as z from 'zod';

const DURATION = Number(process.env.BENCH_DURATION ?? 2);
const ROUNDS = 3;
const CONCURRENCY = 50;

// A typical tool: a code search with three fields, strict schema; the budgeted variant adds two
// budgets (a call counter and a named effect read from the input) whose limits are never reached.
const searchInput = {
  type: 'object',
  additionalProperties: false,
  required: ['query'],
  properties: {
    query: { type: 'string', minLength: 1, maxLength: 1000 },
    path: { type: 'string', minLength: 1, maxLength: 4096 },
    max_results: { type: 'integer', minimum: 1, maximum: 1000 },
  },
};
const contract = {
  name: 'code_reviewer',
  version: '1.0.0',
  description: 'Benchmark contract.',
  tools: {
    search_code: { input: searchInput },
    search_budgeted: {
      input: searchInput,
      effects: { 'search.results': { input: 'max_results', default: 100 } },
    },
  },
  budgets: [
    { tool: 'search_budgeted', limit: 1e12, window: '1h' },
    { effect: 'search.results', limit: 1e15, window: '1h' },
  ],
};
const input = { query: 'createRegistry', path: 'packages/contracts/src', max_results: 50 };
const PRINCIPALS = Array.from({ length: 1000 }, (_, i) => `agent-${i}`);

// The floor: what any implementation must do at least (find the tool, validate the input).
const ajv = new Ajv({ allErrors: true });
const floorValidate = ajv.compile(searchInput);
const floorRoles = new Map([['code_reviewer', new Map([['search_code', floorValidate]])]]);
const floor = (role, tool, data) => {
  const v = floorRoles.get(role)?.get(tool);
  return v?.(data) === true;
};

// The same schema in zod, behind the same lookup.
const zodSchema = z.strictObject({
  query: z.string().min(1).max(1000),
  path: z.string().min(1).max(4096).optional(),
  max_results: z.int().min(1).max(1000).optional(),
});
const zodRoles = new Map([['code_reviewer', new Map([['search_code', zodSchema]])]]);
const zodCheck = (role, tool, data) => {
  const s = zodRoles.get(role)?.get(tool);
  return s?.safeParse(data).success === true;
};

const memory = createRegistry({ contracts: [contract] });

async function measureSync(fn) {
  const end = performance.now() + DURATION * 1000;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) if (!fn(i)) throw new Error('unexpected deny');
    n += 1000;
  }
  return n / DURATION;
}

async function measureAsync(fn) {
  const end = performance.now() + DURATION * 1000;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) if (!(await fn(i)).allowed) throw new Error('unexpected deny');
    n += 1000;
  }
  return n / DURATION;
}

const cases = [
  ['floor: ajv validate + Map lookup', () => measureSync(() => floor('code_reviewer', 'search_code', input))],
  [
    'floor, awaited (what an async API costs alone)',
    () => measureAsync(() => Promise.resolve({ allowed: floor('code_reviewer', 'search_code', input) })),
  ],
  ['zod safeParse + Map lookup', () => measureSync(() => zodCheck('code_reviewer', 'search_code', input))],
  [
    '@amas/contracts check, no budget',
    () =>
      measureAsync((i) =>
        memory.check({ role: 'code_reviewer', tool: 'search_code', input, principal: PRINCIPALS[i % 1000] }),
      ),
  ],
  [
    '@amas/contracts check, 2 budgets (memory)',
    () =>
      measureAsync((i) =>
        memory.check({
          role: 'code_reviewer',
          tool: 'search_budgeted',
          input,
          principal: PRINCIPALS[i % 1000],
        }),
      ),
  ],
];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

console.log(`node ${process.version}, ${DURATION}s per round, ${ROUNDS} rounds (median), cases interleaved`);
const results = new Map(cases.map(([name]) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of cases) results.get(name).push(await run());
}
const floorRate = median(results.get(cases[0][0]));
console.log('\n| case | checks/s | vs floor |');
console.log('| --- | ---: | ---: |');
for (const [name] of cases) {
  const rate = median(results.get(name));
  console.log(`| ${name} | ${fmt(rate)} | ${(rate / floorRate).toFixed(2)}x |`);
}
const budgeted = median(results.get(cases[4][0]));
console.log(
  `\ntargets: >= 0.5x floor (${(budgeted / floorRate).toFixed(2)}x with budgets), >= 1,000,000 checks/s on the memory store (${fmt(budgeted)})`,
);

// Redis: a real redis-server on a free port, 50 concurrent callers, every check one Lua script call.
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('redis-server did not start')), 15_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => reject(new Error('redis-server exited')));
  });
  return { port, child };
}

let redisServer;
try {
  redisServer = await startRedis();
} catch (err) {
  console.log(`\nRedis store: skipped (${err.message}; install redis-server)`);
  process.exit(0);
}
const client = new Redis({ port: redisServer.port, host: '127.0.0.1' });
try {
  const registry = createRegistry({
    contracts: [contract],
    store: createRedisBudgetStore({ client }),
    budgetTimeoutMs: 5_000,
  });
  console.log(
    `\nRedis store (redis-server ${redisServer.port}), ${CONCURRENCY} concurrent callers, ${DURATION}s per round`,
  );
  console.log('| round | checks/s | p50 ms | p99 ms | max ms |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  const rates = [];
  const p99s = [];
  for (let round = 0; round < ROUNDS; round++) {
    const latencies = [];
    const end = performance.now() + DURATION * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, c) => {
        let i = c;
        while (performance.now() < end) {
          const t = performance.now();
          const v = await registry.check({
            role: 'code_reviewer',
            tool: 'search_budgeted',
            input,
            principal: PRINCIPALS[i++ % 1000],
          });
          latencies.push(performance.now() - t);
          if (!v.allowed) throw new Error(`unexpected ${v.code}`);
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
    rates.push(latencies.length / elapsed);
    p99s.push(pct(0.99));
    console.log(
      `| ${round + 1} | ${fmt(latencies.length / elapsed)} | ${pct(0.5).toFixed(2)} | ${pct(0.99).toFixed(2)} | ${latencies.at(-1).toFixed(2)} |`,
    );
  }
  console.log(`median: ${fmt(median(rates))} checks/s, p99 ${median(p99s).toFixed(2)} ms`);
} finally {
  client.disconnect();
  redisServer.child.kill('SIGKILL');
}
