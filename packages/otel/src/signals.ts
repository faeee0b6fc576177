import type { ShutdownSignal } from './types.js';

export interface ExitHooks {
  /** Removes every listener installed here. */
  remove(): void;
}

/**
 * On each signal: flush within `timeoutMs`, then, when no other listener handles the signal (so Node.js
 * would have ended the process), raise it again so that the process ends exactly as it would have. When
 * the application has its own listener, it decides; nothing here keeps the process alive beyond the deadline.
 * On `beforeExit`: flush, once per batch of work, so that the loop can empty and the process exit.
 * `leaving` runs when the process is about to end (`exit`, or just before a signal is raised again), to say
 * what was lost: it must be synchronous.
 */
export function installExitHooks(
  signals: readonly ShutdownSignal[],
  timeoutMs: number,
  flushOnExit: boolean,
  flush: (timeoutMs: number) => Promise<void>,
  warn: (message: string) => void,
  leaving: () => void = () => {},
): ExitHooks {
  const listeners = new Map<ShutdownSignal, () => void>();
  let flushing: Promise<void> | undefined;
  const flushOnce = (deadline: number): Promise<void> => {
    flushing ??= flush(deadline)
      .catch((err: unknown) => warn(`flush failed: ${(err as Error).message}`))
      .finally(() => {
        flushing = undefined;
      });
    return flushing;
  };

  const reraise = (signal: ShutdownSignal): void => {
    remove();
    // A process killed by a signal emits no `exit`: this is the last moment to say what was lost.
    leaving();
    process.kill(process.pid, signal);
  };

  for (const signal of signals) {
    let received = false;
    const listener = (): void => {
      const alone = process.listenerCount(signal) === 1;
      if (received) {
        // A second signal while flushing: the operator insists.
        if (alone) reraise(signal);
        return;
      }
      received = true;
      // Ours is the only listener: the process was going to die, so it may wait for the flush (bounded).
      // Otherwise the application decides when to end, and this timer must not hold it.
      const timer = setTimeout(() => alone && reraise(signal), timeoutMs + 50);
      if (!alone) timer.unref();
      flushOnce(timeoutMs).then(() => {
        clearTimeout(timer);
        if (alone && process.listenerCount(signal) === 1) reraise(signal);
      });
    };
    listeners.set(signal, listener);
    process.on(signal, listener);
  }

  const beforeExit = (): void => {
    void flushOnce(timeoutMs);
  };
  if (flushOnExit) process.on('beforeExit', beforeExit);
  process.on('exit', leaving);

  function remove(): void {
    for (const [signal, listener] of listeners) process.removeListener(signal, listener);
    listeners.clear();
    process.removeListener('beforeExit', beforeExit);
    process.removeListener('exit', leaving);
  }
  return { remove };
}
