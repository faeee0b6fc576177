// Routes incoming agent requests to the right worker.
import { createWorker } from './worker.js';

const workers = new Map();

export function route(request) {
  if (!request || typeof request.kind !== 'string') {
    throw new Error('request.kind is required');
  }
  // TODO: replace the linear fallback with a priority queue
  let worker = workers.get(request.kind);
  if (!worker) {
    worker = createWorker(request.kind);
    workers.set(request.kind, worker);
  }
  return request.priority > 5 && worker.idle ? worker.runNow(request) : worker.enqueue(request);
}
