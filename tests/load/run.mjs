#!/usr/bin/env node
// `pnpm load`: the autocannon equivalent of k6_scenarios.js, for machines without k6. It starts the
// Express example gateway in its own process (embedded OPA-compatible server and memory stores) with
// a test issuer of this process, mints one token per agent, drives the same requests through the same
// stages (ramp up, steady, ramp down), then checks the same thresholds and exits 0 or 1 by itself.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestIssuer } from '@amas/oidc/testing';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const thresholds = JSON.parse(readFileSync(join(here, 'thresholds.json'), 'utf8'));
const { stages, requests } = JSON.parse(readFileSync(join(here, 'scenarios.json'), 'utf8'));
const scale = Number(process.env.LOAD_SCALE ?? '1');

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const AGENTS = {
  'reviewer-agent': { amas_role: 'code_reviewer' },
  'orchestrator-agent': { amas_role: 'orchestrator' },
};

const issuer = await createTestIssuer({ audience: 'amas-gateway', algorithm: 'ES256', tokenTtl: 3600 });
const tokens = {};
for (const [sub, claims] of Object.entries(AGENTS)) {
  tokens[sub] = await issuer.mint({ sub, scope: 'agents:invoke', ...claims });
}
const port = await freePort();
const gateway = spawn('pnpm', ['--silent', '--filter', '@amas-examples/express-gateway', 'start'], {
  cwd: root,
  env: {
    ...process.env,
    PORT: String(port),
    AMAS_OIDC_ISSUER: issuer.issuer,
    AMAS_OIDC_AUDIENCE: 'amas-gateway',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
  detached: true,
});
const stopGateway = () => {
  try {
    process.kill(-gateway.pid, 'SIGTERM');
  } catch {}
};
process.on('exit', stopGateway);

await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('the gateway did not start within 60 s')), 60_000);
  let out = '';
  gateway.stdout.on('data', (chunk) => {
    out += chunk;
    if (out.includes('gateway on http://')) {
      clearTimeout(timer);
      resolve();
    }
  });
  gateway.once('exit', (code) => reject(new Error(`the gateway exited with ${code}: ${out}`)));
});
const url = `http://127.0.0.1:${port}`;
console.log(`load against the express example gateway at ${url}`);

const prepared = requests.map((r) => ({
  method: r.method,
  path: r.path,
  headers: {
    ...(r.as ? { authorization: `Bearer ${tokens[r.as]}` } : {}),
    ...(r.body ? { 'content-type': 'application/json' } : {}),
  },
  ...(r.body ? { body: JSON.stringify(r.body) } : {}),
}));

const latencies = [];
const byScenario = {};
let total = 0;
let failed = 0;
for (const stage of stages) {
  const instance = autocannon({
    url,
    connections: stage.connections,
    duration: Math.max(1, Math.round(stage.seconds * scale)),
    requests: prepared,
  });
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    total += 1;
    if (statusCode >= 400) failed += 1;
    if (latencies.length < 2_000_000) latencies.push(responseTime);
  });
  const result = await instance;
  failed += result.errors + result.timeouts;
  console.log(
    `${stage.name.padEnd(10)} ${String(stage.connections).padStart(3)} connections ${String(result.duration).padStart(3)} s  ${Math.round(result.requests.average)} req/s  p99 ${result.latency.p99} ms  non-2xx ${result.non2xx}  errors ${result.errors}`,
  );
}
for (const r of requests) byScenario[r.scenario] = (byScenario[r.scenario] ?? 0) + 1;

latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? 0;
const p95 = pct(95);
const p99 = pct(99);
const errorRate = total === 0 ? 1 : failed / total;
const checks = [
  [`p95 ${p95.toFixed(1)} ms <= ${thresholds.p95_ms} ms`, p95 <= thresholds.p95_ms],
  [`p99 ${p99.toFixed(1)} ms <= ${thresholds.p99_ms} ms`, p99 <= thresholds.p99_ms],
  [
    `error rate ${(errorRate * 100).toFixed(2)}% <= ${thresholds.max_error_rate * 100}%`,
    errorRate <= thresholds.max_error_rate,
  ],
  [`requests served ${total} > 0`, total > 0],
];
console.log(`\n${total} requests over scenarios ${Object.keys(byScenario).join(', ')}`);
for (const [text, ok] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${text}`);

stopGateway();
await issuer.close();
process.exit(checks.every(([, ok]) => ok) ? 0 : 1);
