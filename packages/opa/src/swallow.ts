/**
 * Marks what a user hook returned as handled when it is a promise, so that an `async` hook that
 * rejects cannot become an unhandled rejection (which ends a Node process by default).
 */
export function swallow(value: unknown): void {
  if (typeof (value as PromiseLike<unknown> | undefined)?.then === 'function') {
    (value as PromiseLike<unknown>).then(undefined, () => undefined);
  }
}
