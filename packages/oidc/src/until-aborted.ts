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
