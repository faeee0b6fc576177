// In-process verification of the @amas/oidc benchmark: no HTTP, one key, the same token claims.
// Compares jose's jwtVerify (what users call when they verify by hand) with @amas/oidc's verify on a
// cached token (warm) and on tokens it has never seen (cold). Windows alternate A/B/A/B to even out
// noise; the best window of each counts. Besides ops/s it reports the process CPU time per
// verification (the RSA work runs on the libuv thread pool, so wall-clock throughput also depends on
// how many cores are free). Prints JSON on the last line for oidc.bench.mjs.
import { createVerifier } from '@amas/oidc';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';

const windowMs = Math.max(300, Number(process.env.BENCH_MICRO_MS ?? 1000));
const issuer = 'https://issuer.bench/';
const audience = 'https://api.bench';

const { privateKey, publicKey } = await generateKeyPair('RS256');
const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
const mint = (i) =>
  new SignJWT({ sub: `agent-${i}`, client_id: 'bench', scope: 'tools:run tools:read', jti: `j${i}` })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'at+jwt' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(privateKey);

const pool = await Promise.all(Array.from({ length: 2000 }, (_, i) => mint(i)));
const one = pool[0];

// 32 verifications in flight at a time, as in a server under load: jose runs RSA in the libuv
// thread pool, so a one-at-a-time loop would measure thread hand-offs rather than the work.
async function measure(fn) {
  let ops = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const end = started + windowMs;
  while (performance.now() < end) {
    await Promise.all(Array.from({ length: 32 }, () => fn(ops++)));
  }
  const used = process.cpuUsage(cpu);
  return { rate: (ops / (performance.now() - started)) * 1000, cpu: (used.user + used.system) / ops };
}

const warm = createVerifier({ issuer, audience, keys: [jwk] });
// Smaller than the pool, in round-robin: every cold call misses the cache.
const cold = createVerifier({ issuer, audience, keys: [jwk], cache: { maxEntries: 1000 } });
await warm.verify(one);

const cases = {
  'jose jwtVerify (same token)': (i) =>
    jwtVerify(one, publicKey, { issuer, audience, algorithms: ['RS256'] }).then(() => i),
  'jose jwtVerify (distinct tokens)': (i) =>
    jwtVerify(pool[i % pool.length], publicKey, { issuer, audience, algorithms: ['RS256'] }),
  '@amas/oidc verify, cached token': () => warm.verify(one),
  '@amas/oidc verify, distinct tokens (cold)': (i) => cold.verify(pool[i % pool.length]),
};

const best = Object.fromEntries(Object.keys(cases).map((k) => [k, 0]));
const leastCpu = Object.fromEntries(Object.keys(cases).map((k) => [k, Number.POSITIVE_INFINITY]));
for (let round = 0; round < 3; round++) {
  for (const [name, fn] of Object.entries(cases)) {
    const { rate, cpu } = await measure(fn);
    best[name] = Math.max(best[name], rate);
    leastCpu[name] = Math.min(leastCpu[name], cpu);
  }
}

const SAME = 'jose jwtVerify (same token)';
const DISTINCT = 'jose jwtVerify (distinct tokens)';
console.log(
  '\nin-process verification (RS256, 32 in flight; best of 3 windows of %d ms)      ops/s   vs jose   CPU µs/op  vs jose',
  windowMs,
);
for (const [name, ops] of Object.entries(best)) {
  const base = name.includes('cached') || name.includes('same') ? SAME : DISTINCT;
  console.log(
    `  ${name.padEnd(44)} ${Math.round(ops).toString().padStart(9)}  ${(ops / best[base]).toFixed(2).padStart(7)}x ${leastCpu[name].toFixed(2).padStart(10)} ${(leastCpu[base] / leastCpu[name]).toFixed(2).padStart(7)}x`,
  );
}
console.log(
  JSON.stringify({
    cachedVsJose: best['@amas/oidc verify, cached token'] / best[SAME],
    coldVsJose: best['@amas/oidc verify, distinct tokens (cold)'] / best[DISTINCT],
    coldCpuVsJose: leastCpu[DISTINCT] / leastCpu['@amas/oidc verify, distinct tokens (cold)'],
  }),
);
