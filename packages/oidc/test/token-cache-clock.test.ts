import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, ISSUER, rejectsWith } from './helpers.js';
import { recordSpans } from './spans.js';

// The verified-token cache evicts with CLOCK (second chance) over a ring of slots that is reused.
// These tests drive it through `verify` and read hits and misses from the `amas.oidc.cache` span
// attribute: against a model of CLOCK for generated sequences, and for the slots an expired token
// leaves behind. HS256 keeps minting and verifying fast.

const recorder = recordSpans();
const SECRET = 'token-cache-clock-secret-of-32-bytes!';
const NOW = 1_900_000_000;

beforeEach(() => {
  recorder.exporter.reset();
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW * 1000);
});
afterEach(() => {
  vi.useRealTimers();
});

function mint(sub: string, exp = NOW + 3600): string {
  const h = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt' })).toString('base64url');
  const p = Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub, iat: NOW, exp })).toString(
    'base64url',
  );
  return `${h}.${p}.${createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url')}`;
}

const outcomes = () => recorder.spans('amas.oidc.verify').map((s) => s.attributes['amas.oidc.cache']);
const verifier = (maxEntries: number) =>
  createVerifier({ issuer: ISSUER, audience: AUDIENCE, secret: SECRET, cache: { maxEntries } });

/** CLOCK as documented: a hit sets a flag; a full cache evicts at the hand, clearing flags on the way. */
function clockModel(maxEntries: number, sequence: readonly number[]): string[] {
  const ring: { id: number; used: boolean }[] = [];
  let hand = 0;
  const answers: string[] = [];
  for (const id of sequence) {
    const slot = ring.find((s) => s.id === id);
    if (slot) {
      slot.used = true;
      answers.push('hit');
      continue;
    }
    answers.push('miss');
    if (ring.length < maxEntries) {
      ring.push({ id, used: false });
      continue;
    }
    for (;;) {
      const victim = ring[hand] as { id: number; used: boolean };
      hand = (hand + 1) % ring.length;
      if (victim.used) {
        victim.used = false;
        continue;
      }
      victim.id = id;
      break;
    }
  }
  return answers;
}

describe('verified-token cache eviction (CLOCK over a reused ring)', () => {
  it('answers hits and misses as CLOCK does, for generated sequences of tokens', async () => {
    const tokens = Array.from({ length: 10 }, (_, i) => mint(`agent-${i}`));
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 60 }),
        async (maxEntries, sequence) => {
          recorder.exporter.reset();
          const v = verifier(maxEntries);
          for (const i of sequence) {
            expect((await v.verify(tokens[i] as string)).subject).toBe(`agent-${i}`);
          }
          await v.close();
          expect(outcomes()).toEqual(clockModel(maxEntries, sequence));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps every token while there are no more than maxEntries of them', async () => {
    const tokens = Array.from({ length: 50 }, (_, i) => mint(`agent-${i}`));
    const v = verifier(50);
    for (const t of tokens) await v.verify(t);
    for (const t of [...tokens].reverse()) await v.verify(t);
    expect(outcomes()).toEqual([...Array(50).fill('miss'), ...Array(50).fill('hit')]);
    await v.close();
  });

  it('never holds more than maxEntries tokens, however many pass through', async () => {
    const tokens = Array.from({ length: 400 }, (_, i) => mint(`agent-${i}`));
    const v = verifier(8);
    for (const t of tokens) await v.verify(t);
    recorder.exporter.reset();
    for (const t of tokens) await v.verify(t);
    expect(outcomes().filter((o) => o === 'hit').length).toBeLessThanOrEqual(8);
    await v.close();
  });

  it('reuses the slot of an expired token before evicting a live one', async () => {
    const v = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      secret: SECRET,
      clockTolerance: 0,
      cache: { maxEntries: 2 },
    });
    const shortLived = mint('short', NOW + 10);
    const live = mint('live');
    const next = mint('next');
    await v.verify(shortLived);
    await v.verify(live);
    vi.setSystemTime((NOW + 20) * 1000);
    await rejectsWith(v.verify(shortLived), 'token_expired', 401);
    await v.verify(next); // takes the expired token's slot
    await v.verify(live);
    await v.verify(next);
    expect(outcomes()).toEqual(['miss', 'miss', 'miss', 'miss', 'hit', 'hit']);
    await v.close();
  });

  it('answers the same principal again when one token is verified twice concurrently', async () => {
    const v = verifier(2);
    const token = mint('twice');
    const [a, b] = await Promise.all([v.verify(token), v.verify(token)]);
    expect(a.subject).toBe('twice');
    expect(b.subject).toBe('twice');
    const c = await v.verify(token);
    expect(c.subject).toBe('twice');
    expect(outcomes()).toEqual(['miss', 'miss', 'hit']);
    await v.close();
  });
});
