// @amas/opa: decisions per second and p99 through the Express adapter against an OPA-compatible
// server, side by side with the official client (@open-policy-agent/opa) and a minimal hand-written
// fetch() (the floor of the work), uncached and cached; how many of 1,000 concurrent identical
// queries reach OPA; and the cost per decision while OPA is down or answering 500.
//
//   pnpm --filter @amas/bench bench opa          (BENCH_DURATION=seconds per round, default 5)
//
// The OPA server and each Express app run in their own processes; autocannon runs here.
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEnforcer } from '@amas/opa';
import { OPAClient } from '@open-policy-agent/opa';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = 32;

function child(file, args = []) {
  const p = fork(join(here, file), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = (msg, key) =>
    new Promise((resolve) => {
      const on = (m) => {
        if (key in m) {
          p.off('message', on);
          resolve(m[key]);
        }
      };
      p.on('message', on);
      if (msg) p.send(msg);
    });
  return { proc: p, ready: ask(null, 'ready'), ask };
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

const opa = child('opa-server.mjs');
const opaUrl = await opa.ready;
const input = { agent_role: 'code_reviewer', tool_name: 'read_file', input: { path: 'src/index.ts' } };

// 1. Through Express, against the OPA server.
console.log(
  `\n1. Express 5 app, POST /tools/code_reviewer/read_file, ${CONNECTIONS} connections, ${DURATION}s per round`,
);
console.log(
  '   (the OPA-compatible server answers the shipped tool-access policy; same machine, separate processes)\n',
);
const variants = ['none', 'fetch', 'official', 'amas-uncached', 'amas-cached'];
const rows = [];
for (const variant of variants) {
  const app = child('opa-app.mjs', [variant, opaUrl]);
  const url = await app.ready;
  const opts = {
    url: `${url}/tools/code_reviewer/read_file`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: 'src/index.ts' }),
    connections: CONNECTIONS,
  };
  await autocannon({ ...opts, duration: 1 });
  await opa.ask({ reset: true }, 'reset');
  const r = await autocannon({ ...opts, duration: DURATION });
  const stats = await opa.ask({ stats: true }, 'stats');
  const ok = r['2xx'];
  rows.push({
    variant,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    opa: stats.data,
    ok,
  });
  app.proc.send({ close: true });
  await new Promise((res) => app.proc.once('exit', res));
}
const floor = rows.find((r) => r.variant === 'fetch');
console.log('   variant         req/s    p50 ms   p99 ms   non-2xx   OPA requests   vs fetch floor');
for (const r of rows) {
  console.log(
    `   ${r.variant.padEnd(14)} ${fmt(r.rps).padStart(6)}   ${fmt(r.p50, 1).padStart(6)}   ${fmt(r.p99, 1).padStart(6)}   ${String(r.non2xx).padStart(7)}   ${String(r.opa).padStart(12)}   ${(r.rps / floor.rps).toFixed(2)}x`,
  );
}

// 2. 1,000 concurrent identical queries.
console.log('\n2. 1,000 concurrent identical queries: how many reach OPA (target: 1)\n');
const burst = async (label, run) => {
  await opa.ask({ reset: true }, 'reset');
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 1000 }, run));
  const ms = performance.now() - t0;
  const stats = await opa.ask({ stats: true }, 'stats');
  console.log(
    `   ${label.padEnd(44)} ${String(stats.data).padStart(5)} OPA requests   ${fmt(ms, 1).padStart(7)} ms`,
  );
};
{
  const coalescing = createEnforcer({ url: opaUrl });
  await burst('@amas/opa (default: coalescing + cache)', () =>
    coalescing.decide('amas/tool_access/decision', input),
  );
  coalescing.close();
  const plain = createEnforcer({ url: opaUrl, cache: false, coalesce: false, maxSockets: 64 });
  await burst('@amas/opa (cache and coalescing off)', () => plain.decide('amas/tool_access/decision', input));
  plain.close();
  const official = new OPAClient(opaUrl);
  await burst('@open-policy-agent/opa', () => official.evaluate('amas/tool_access/decision', input));
}

// 3. Cost per decision while OPA is down or failing (sequential calls).
console.log(`\n3. Cost per decision while OPA is down or answering 500 (sequential, ${DURATION}s each)\n`);
const downUrl = `http://127.0.0.1:${await freePort()}`;
const perDecision = async (label, once, target) => {
  for (let i = 0; i < 50; i++) await once();
  await opa.ask({ reset: true }, 'reset');
  let n = 0;
  const end = performance.now() + DURATION * 1000;
  const t0 = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) await once();
    n += 100;
  }
  const us = ((performance.now() - t0) * 1000) / n;
  const stats = await opa.ask({ stats: true }, 'stats');
  const reached = target === 'down' ? 'n/a (refused)' : `${stats.data} of ${n}`;
  console.log(
    `   ${label.padEnd(46)} ${fmt(us, 1).padStart(9)} µs   ${fmt(n).padStart(9)} decisions   reached OPA: ${reached}`,
  );
  return us;
};
const amas = (url, breaker) =>
  createEnforcer({
    url,
    retries: 0,
    cache: false,
    breaker: breaker ? { failureThreshold: 5, openMs: 1_000 } : false,
  });
const guard = (e) => () => e.decide('amas/tool_access/decision', input);
const swallow = (p) =>
  p.then(
    () => undefined,
    () => undefined,
  );
const officialDown = new OPAClient(downUrl);
const fetchFloor = (url) => () =>
  swallow(
    fetch(`${url}/v1/data/amas/tool_access/decision`, {
      method: 'POST',
      body: JSON.stringify({ input }),
    }).then((r) => r.json()),
  );

const results = {};
results.downNoBreaker = await perDecision(
  '@amas/opa, OPA down, breaker off',
  guard(amas(downUrl, false)),
  'down',
);
results.downBreaker = await perDecision(
  '@amas/opa, OPA down, breaker on',
  guard(amas(downUrl, true)),
  'down',
);
await perDecision(
  '@open-policy-agent/opa, OPA down',
  () => swallow(officialDown.evaluate('amas/tool_access/decision', input)),
  'down',
);
await perDecision('hand-written fetch, OPA down', fetchFloor(downUrl), 'down');
await opa.ask({ fault: { kind: 'error500' } }, 'fault');
results.e500NoBreaker = await perDecision(
  '@amas/opa, OPA answers 500, breaker off',
  guard(amas(opaUrl, false)),
  '500',
);
results.e500Breaker = await perDecision(
  '@amas/opa, OPA answers 500, breaker on',
  guard(amas(opaUrl, true)),
  '500',
);
const officialUp = new OPAClient(opaUrl);
await perDecision(
  '@open-policy-agent/opa, OPA answers 500',
  () => swallow(officialUp.evaluate('amas/tool_access/decision', input)),
  '500',
);
await opa.ask({ fault: null }, 'fault');

console.log(
  `\n   breaker open: ${fmt(results.downBreaker, 1)} µs (down) and ${fmt(results.e500Breaker, 1)} µs (500) per decision; target < 20 µs` +
    ` -> ${results.downBreaker < 20 && results.e500Breaker < 20 ? 'met' : 'NOT met'}`,
);
console.log(
  `   ratio breaker off / on: ${(results.downNoBreaker / results.downBreaker).toFixed(0)}x (down), ${(results.e500NoBreaker / results.e500Breaker).toFixed(0)}x (500)`,
);

opa.proc.send({ close: true });
await new Promise((res) => opa.proc.once('exit', res));
process.exit(0);
