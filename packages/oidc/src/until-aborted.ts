/**
 * Settles like `work`, or rejects as soon as `signal` aborts, whichever comes first. Timeouts are
 * enforced here rather than trusted to the callee: a custom `fetch`, a response body or an issuer
 * resolver that ignores the signal must not hold every request of an issuer forever.
 */
export function untilAborted<T>(work: T | PromiseLike<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve(work).then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** A signal bounded by a timeout and a parent signal, and how to let go of it. */
export interface BoundedSignal {
  readonly signal: AbortSignal;
  /** Clears the timer and stops listening to the parent: call it once the bounded work settled. */
  release(): void;
}

/**
 * A signal that aborts after `ms` (with `reason`) or as soon as `parent` aborts (with the parent's
 * reason). Not `AbortSignal.any([parent, AbortSignal.timeout(ms)])`: on Node.js 20 its sources hold
 * the combined signal weakly, so after a garbage collection its timeout can be lost and a call that
 * ignores the signal (a custom `fetch`, a resolver) stays hung until the verifier closes. Here the
 * timer and the parent hold the controller until {@link BoundedSignal.release}.
 */
export function boundedSignal(parent: AbortSignal, ms: number, reason: string): BoundedSignal {
  const controller = new AbortController();
  const onParent = () => controller.abort(parent.reason ?? new Error('aborted'));
  const timer = setTimeout(() => controller.abort(new Error(reason)), ms);
  parent.addEventListener('abort', onParent, { once: true });
  if (parent.aborted) onParent();
  return {
    signal: controller.signal,
    release() {
      clearTimeout(timer);
      parent.removeEventListener('abort', onParent);
    },
  };
}
