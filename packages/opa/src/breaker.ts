/**
 * The state of a circuit breaker, as reported by {@link CircuitBreaker.state}.
 *
 * @example
 * ```ts
 * if (enforcer.breaker?.state() === 'open') metrics.opaBreakerOpen.set(1);
 * ```
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

/**
 * A consecutive-failure circuit breaker. While open, callers are refused at once (no socket, no
 * timer); after `openMs` one probe is let through, and its outcome closes or reopens the circuit.
 *
 * @example
 * ```ts
 * const b = createBreaker({ failureThreshold: 5, openMs: 1000 });
 * const ticket = b.acquire();
 * if (ticket.ok) { const ok = await callOpa(); ok ? b.success() : b.failure(); }
 * ```
 */
export interface CircuitBreaker {
  /** Asks to send a request: `ok` (maybe as the probe) or refused with when to retry. */
  acquire(): { ok: true; probe: boolean } | { ok: false; retryAfterMs: number };
  success(): void;
  failure(): void;
  state(): BreakerState;
}

/**
 * Creates a {@link CircuitBreaker}. `now` is injectable for tests.
 *
 * @example
 * ```ts
 * const breaker = createBreaker({ failureThreshold: 3, openMs: 500 });
 * ```
 */
export function createBreaker(options: {
  failureThreshold: number;
  openMs: number;
  now?: () => number;
}): CircuitBreaker {
  const now = options.now ?? Date.now;
  let state: BreakerState = 'closed';
  let failures = 0;
  let openUntil = 0;
  let probing = false;

  return {
    acquire() {
      if (state === 'closed') return { ok: true, probe: false };
      const t = now();
      if (state === 'open' && t >= openUntil) {
        state = 'half_open';
        probing = false;
      }
      if (state === 'half_open' && !probing) {
        probing = true;
        return { ok: true, probe: true };
      }
      return { ok: false, retryAfterMs: Math.max(0, openUntil - t) };
    },
    success() {
      state = 'closed';
      failures = 0;
      probing = false;
    },
    failure() {
      failures++;
      if (state === 'half_open' || failures >= options.failureThreshold) {
        state = 'open';
        openUntil = now() + options.openMs;
        probing = false;
      }
    },
    state() {
      return state === 'open' && now() >= openUntil ? 'half_open' : state;
    },
  };
}
