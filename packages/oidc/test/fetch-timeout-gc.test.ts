import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, rejectsWith, sleep } from './helpers.js';

// A custom fetch that ignores its signal and never answers (a hung proxy, a broken mock) must still
// be cut off by jwks.timeout, even when the garbage collector runs while it hangs: on Node.js 20 a
// signal made by AbortSignal.any() can lose its timeout once collected.

let idp: TestIssuer;
beforeAll(async () => {
  idp = await createTestIssuer({ audience: AUDIENCE });
});
afterAll(async () => {
  await idp.close();
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Settles with the results, or 'hung' when `ms` pass first. */
async function within<T>(ms: number, work: Promise<T>): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<'hung'>((resolve) => {
        timer = setTimeout(() => resolve('hung'), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a fetch that ignores its signal and hangs', () => {
  it.each([
    ['the JWKS', () => ({ jwksUri: idp.jwksUri }), 'jwks_unavailable'],
    ['discovery', () => ({}), 'discovery_failed'],
  ])(
    '%s fetch is still cut off by jwks.timeout while the garbage collector runs',
    async (_name, source, code) => {
      let calls = 0;
      const v = createVerifier({
        issuer: idp.issuer,
        audience: AUDIENCE,
        ...source(),
        jwks: { timeout: 0.3 },
        fetch: () => {
          calls++;
          return new Promise<Response>(() => {});
        },
      });
      try {
        const tokens = await Promise.all(
          Array.from({ length: 3 }, (_, i) => idp.mint({ sub: `agent-${i}` })),
        );
        const settled = Promise.allSettled(tokens.map((t) => v.verify(t)));
        for (let i = 0; i < 5; i++) {
          await sleep(20);
          gc();
        }
        const results = await within(5000, settled);
        expect(results).not.toBe('hung');
        for (const r of results as PromiseSettledResult<unknown>[]) {
          expect(r).toMatchObject({ status: 'rejected', reason: { code, status: 503 } });
        }
        expect(calls).toBeGreaterThanOrEqual(1);
        await rejectsWith(v.verify(tokens[0] as string), code, 503);
      } finally {
        await v.close();
      }
    },
  );
});
