// @amas/oidc side by side with what users pick instead, in one run on 127.0.0.1:
//   Express 5: no auth, a minimal hand-written jose middleware, express-jwt + jwks-rsa,
//              express-oauth2-jwt-bearer, @amas/oidc cold (every token new) and warm (tokens reused);
//   Koa 3:     no auth, minimal jose, koa-jwt + jwks-rsa, @amas/oidc cold and warm;
// then in-process verification (cached token vs jose jwtVerify) and the memory of 100k cached tokens.
// The apps run in a child process (oidc-apps.mjs), autocannon here. Tokens are RS256 from the
// @amas/oidc/testing issuer, which also serves discovery and the JWKS.
//
//   pnpm --filter @amas/bench bench oidc            BENCH_DURATION=5 (seconds per app per round)
//   BENCH_ROUNDS=3 BENCH_CONNECTIONS=32 BENCH_COLD_TOKENS=12000
import { execFileSync, fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestIssuer } from '@amas/oidc/testing';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));
const duration = Number(process.env.BENCH_DURATION ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
// More distinct tokens than the default cache bound (10 000), used round-robin: every cold request misses.
const coldCount = Number(process.env.BENCH_COLD_TOKENS ?? 12_000);
const audience = 'https://api.bench';

const idp = await createTestIssuer({ audience, algorithm: 'RS256', tokenTtl: 3600 });
const claims = (i) => ({
  sub: `agent-${i}`,
  client_id: `orchestrator-${i % 50}`,
  scope: 'tools:run tools:read',
});

console.log(`minting ${coldCount} cold tokens and 64 warm tokens (RS256)...`);
const cold = [];
for (let i = 0; i < coldCount; i += 500) {
  cold.push(
    ...(await Promise.all(
      Array.from({ length: Math.min(500, coldCount - i) }, (_, j) => idp.mint(claims(i + j))),
    )),
  );
}
const warm = await Promise.all(Array.from({ length: 64 }, (_, i) => idp.mint(claims(i))));

const child = fork(join(here, 'oidc-apps.mjs'), {
  env: { ...process.env, OIDC_BENCH: JSON.stringify({ issuer: idp.issuer, audience, jwksUri: idp.jwksUri }) },
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const { ports } = await new Promise((resolve, reject) => {
  child.once('message', resolve);
  child.once('exit', (code) => reject(new Error(`apps exited with ${code}`)));
});

const groups = {
  'Express 5': ['none', 'jose', 'express-jwt', 'oauth2-jwt-bearer', 'amas-cold', 'amas-warm'].map(
    (a) => `express:${a}`,
  ),
  'Koa 3': ['none', 'jose', 'koa-jwt', 'amas-cold', 'amas-warm'].map((a) => `koa:${a}`),
};

const ask = (message, key) =>
  new Promise((resolve) => {
    const onMessage = (reply) => {
      if (reply && key in reply) {
        child.off('message', onMessage);
        resolve(reply[key]);
      }
    };
    child.on('message', onMessage);
    child.send(message);
  });

async function load(app, seconds) {
  const tokens = app.endsWith('amas-warm') ? warm : cold;
  await ask('start', 'started');
  let next = Math.floor(Math.random() * tokens.length);
  const result = await autocannon({
    url: `http://127.0.0.1:${ports[app]}/`,
    connections,
    duration: seconds,
    requests: [
      {
        setupRequest: (req) => {
          req.headers = { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` };
          return req;
        },
      },
    ],
  });
  const cpuMicros = await ask('stop', 'cpuMicros');
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    cpu: cpuMicros / Math.max(1, result.requests.total),
    bad: result.non2xx + result.errors + result.timeouts,
  };
}

const results = {};
const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
for (let round = 1; round <= rounds; round++) {
  console.log(`\nround ${round}/${rounds}: ${duration} s per app, ${connections} connections`);
  for (const [group, apps] of Object.entries(groups)) {
    const order = round % 2 === 0 ? [...apps].reverse() : apps;
    const row = {};
    for (const app of order) {
      if (round === 1) await load(app, 1); // JIT and JWKS warm-up, not measured
      row[app] = await load(app, duration);
      results[app] = [...(results[app] ?? []), row[app]];
    }
    const none = row[apps[0]];
    const jose = row[apps[1]];
    console.log(
      `  ${group.padEnd(28)}     req/s  p99 ms  vs none  vs jose   server CPU µs/req  vs none  vs jose  non-2xx`,
    );
    for (const app of apps) {
      const r = row[app];
      const cells = [
        fmt(r.rps).padStart(9),
        fmt(r.p99).padStart(7),
        `${(r.rps / none.rps).toFixed(2)}x`.padStart(8),
        `${(r.rps / jose.rps).toFixed(2)}x`.padStart(8),
        fmt(r.cpu, 1).padStart(19),
        `${(none.cpu / r.cpu).toFixed(2)}x`.padStart(8),
        `${(jose.cpu / r.cpu).toFixed(2)}x`.padStart(8),
        String(r.bad).padStart(8),
      ];
      console.log(`  ${app.padEnd(28)}${cells.join(' ')}`);
    }
  }
}
child.disconnect();
await idp.close();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
// A target is the median over rounds of the ratio within each round (the "vs" columns above): the two
// apps of a ratio ran back to back under the same conditions, whereas medians taken per app apart could
// pair one app's best round with the other's worst.
const ratios = (app, base, of) => results[app].map((r, i) => of(r, results[base][i]));
const rpsRatios = (app, base) => ratios(app, base, (a, b) => a.rps / b.rps);
const cpuRatios = (app, base) => ratios(app, base, (a, b) => b.cpu / a.cpu);

const runChild = (file, flags = []) => {
  const out = execFileSync(process.execPath, [...flags, join(here, file)], {
    encoding: 'utf8',
    env: process.env,
  });
  const lines = out.trim().split('\n');
  console.log(lines.slice(0, -1).join('\n'));
  return JSON.parse(lines.at(-1));
};
const micro = runChild('oidc-micro.mjs');
const memory = runChild('oidc-memory.mjs', ['--expose-gc']);

// Each HTTP target is a throughput ratio (req/s) and, beside it, the same ratio of server CPU per
// request (inverted: higher is better), which holds up better when other processes share the cores.
const targets = [
  ['Express: amas cold vs minimal jose', 'express:amas-cold', 'express:jose', 1.0],
  ['Koa: amas cold vs minimal jose', 'koa:amas-cold', 'koa:jose', 1.0],
  ['Express: amas warm vs no auth', 'express:amas-warm', 'express:none', 0.9],
  ['Koa: amas warm vs no auth', 'koa:amas-warm', 'koa:none', 0.8],
];
console.log(
  `\ntargets (median of the per-round ratios over ${rounds} rounds)  req/s ratio   CPU/req ratio   target   rounds (req/s; CPU)`,
);
for (const [name, app, base, target] of targets) {
  const byRps = rpsRatios(app, base);
  const byCpu = cpuRatios(app, base);
  const [r, c] = [median(byRps), median(byCpu)];
  const list = (xs) => xs.map((x) => x.toFixed(2)).join(' ');
  console.log(
    `  ${name.padEnd(44)} ${r.toFixed(2).padStart(9)}x ${c.toFixed(2).padStart(13)}x   >= ${target}x  ${r >= target ? 'met' : 'NOT MET'}${c >= target ? '' : ' (CPU: not met)'}   ${list(byRps)}; ${list(byCpu)}`,
  );
}
console.log(
  `  ${'in-process: cached verify vs jose jwtVerify'.padEnd(44)} ${micro.cachedVsJose.toFixed(2).padStart(9)}x ${''.padStart(14)}   >= 20x  ${micro.cachedVsJose >= 20 ? 'met' : 'NOT MET'}`,
);
console.log(
  `  ${'in-process: cold verify vs jose jwtVerify'.padEnd(44)} ${micro.coldVsJose.toFixed(2).padStart(9)}x ${micro.coldCpuVsJose.toFixed(2).padStart(13)}x   (no target; ops/s and CPU per verification)`,
);
console.log(
  `  memory: ${(memory.fullBytes / 1024 / 1024).toFixed(1)} MiB for 100k cached tokens (${Math.round(memory.perEntry)} B/entry); default bound 10k: ${(memory.boundedBytes / 1024 / 1024).toFixed(1)} MiB`,
);
const bad = Object.entries(results).filter(([, rs]) => rs.some((r) => r.bad > 0));
if (bad.length > 0) {
  console.error(`\nnon-2xx responses or errors in: ${bad.map(([a]) => a).join(', ')}`);
  process.exitCode = 1;
}
