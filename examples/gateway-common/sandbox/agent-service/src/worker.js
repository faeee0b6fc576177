// A worker runs one kind of task at a time.
export function createWorker(kind) {
  const queue = [];
  return {
    kind,
    get idle() {
      return queue.length === 0;
    },
    enqueue(task) {
      queue.push(task);
      return { queued: queue.length };
    },
    runNow(task) {
      for (const step of task.steps ?? []) {
        if (step.skip) continue;
        // FIXME: steps that throw should not stop the whole task
        step.run();
      }
      return { done: true };
    },
  };
}
