// Memory of the @amas/oidc verified-token cache, run with --expose-gc by oidc.bench.mjs.
// 100 000 distinct tokens are verified one after the other and dropped by the caller, as request
// tokens are, so what stays on the heap is what the cache holds (token string, principal, claims).
// HS256 keeps minting fast; the claims are those of a typical agent access token. The same run
// against the default bound (10 000 entries) shows that the cache does not grow past its bound.
import { createHmac, randomUUID } from 'node:crypto';
import { createVerifier } from '@amas/oidc';

const COUNT = Number(process.env.BENCH_MEMORY_TOKENS ?? 100_000);
const secret = 'benchmark-secret-of-32-bytes-min!';
const issuer = 'https://issuer.bench/';
const audience = 'https://api.bench';
const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: 'hs-1' })).toString(
  'base64url',
);

function mint(i) {
  const now = Math.floor(Date.now() / 1000);
  const payload = Buffer.from(
    JSON.stringify({
      iss: issuer,
      aud: audience,
      sub: `agent-${i}`,
      client_id: `orchestrator-${i % 50}`,
      scope: 'tools:run tools:read files:read',
      agent_role: 'code_reviewer',
      tenant: 'acme',
      iat: now,
      exp: now + 3600,
      jti: randomUUID(),
    }),
  ).toString('base64url');
  const input = `${header}.${payload}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function heap() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

async function fill(maxEntries) {
  const verifier = createVerifier({ issuer, audience, secret, cache: { maxEntries } });
  const before = heap();
  let length = 0;
  const started = performance.now();
  for (let i = 0; i < COUNT; i++) {
    const token = mint(i);
    length += token.length;
    await verifier.verify(token);
  }
  const seconds = (performance.now() - started) / 1000;
  const bytes = heap() - before;
  await verifier.close();
  return { bytes, averageLength: length / COUNT, seconds };
}

const full = await fill(COUNT);
const bounded = await fill(10_000);
const mb = (b) => (b / 1024 / 1024).toFixed(1);
console.log(
  `\nverified-token cache memory (${COUNT} distinct tokens, average token ${Math.round(full.averageLength)} characters)`,
);
console.log(
  `  maxEntries ${COUNT}: ${mb(full.bytes)} MiB retained, ${Math.round(full.bytes / COUNT)} bytes per entry`,
);
console.log(
  `  maxEntries 10000 (default): ${mb(bounded.bytes)} MiB retained after ${COUNT} tokens (bounded)`,
);
console.log(`  ${Math.round(COUNT / full.seconds)} cold HS256 verifications per second while filling`);
console.log(
  JSON.stringify({
    fullBytes: full.bytes,
    boundedBytes: bounded.bytes,
    perEntry: full.bytes / COUNT,
    tokenLength: full.averageLength,
  }),
);
