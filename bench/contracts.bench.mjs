// @amas/contracts: checks per second for a typical contract with the memory store, side by side with the
// floor of the work (a precompiled ajv validate plus a Map lookup) and with an equivalent zod schema, then
// the same with an OpenTelemetry SDK recording every span (both in contracts-micro.mjs, each in its own
// process); then the Redis store's checks per second and latency percentiles at 50 concurrent callers
// against a real redis-server.
//
//   pnpm --filter @amas/bench bench contracts
//   (BENCH_DURATION = seconds per turn, default 2; BENCH_ROUNDS = interleaved rounds, default 7)
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRedisBudgetStore, createRegistry } from '@amas/contracts';
import { Redis } from 'ioredis';
import { contract, input, PRINCIPALS } from './contracts-cases.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_DURATION ?? 2);
const ROUNDS = 3;
const CONCURRENCY = 50;

const micro = (args, title) => {
  console.log(`\n${title}`);
  const r = spawnSync(process.execPath, ['--expose-gc', join(here, 'contracts-micro.mjs'), ...args], {
    stdio: 'inherit',
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
micro([], 'In process, memory store, no OpenTelemetry SDK (spans are no-ops)');
micro(['--traced'], 'In process, memory store, with an OpenTelemetry SDK recording every span');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

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
