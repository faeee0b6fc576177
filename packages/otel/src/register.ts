import { isMainThread } from 'node:worker_threads';
import { setupTelemetry } from './setup.js';
import type { TelemetryHandle } from './types.js';

const signals = process.env.AMAS_OTEL_SIGNALS?.trim().toLowerCase() !== 'false';

/**
 * Tracing started from the environment alone, for `node --import @amas/otel/register app.js` (ESM) or
 * `node --require @amas/otel/register app.js` / `require('@amas/otel/register')` first thing (CommonJS).
 * Every setting comes from the standard `OTEL_*` variables; instrumentations are named with
 * `OTEL_NODE_ENABLED_INSTRUMENTATIONS=http,express` and, for ESM, intercepted by the loader hook of
 * `@opentelemetry/instrumentation`, registered here before the application's modules load. Spans are
 * flushed on `SIGTERM`/`SIGINT` (set `AMAS_OTEL_SIGNALS=false` to leave signals alone) and on `beforeExit`.
 * Worker threads are left alone: a worker that wants tracing calls {@link setupTelemetry} itself.
 *
 * @example
 * ```sh
 * OTEL_SERVICE_NAME=orchestrator \
 * OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318 \
 * OTEL_NODE_ENABLED_INSTRUMENTATIONS=http,express \
 *   node --import @amas/otel/register server.js
 * ```
 * ```ts
 * // to flush yourself, e.g. in a graceful shutdown:
 * import { telemetry } from '@amas/otel/register';
 * await telemetry.shutdown();
 * ```
 */
export const telemetry: TelemetryHandle = setupTelemetry(
  // `--require` preloads also run in worker threads, Node's module-hooks thread included; tracing starts
  // in the main thread only (a worker that wants its own calls setupTelemetry itself).
  isMainThread ? { signals } : { enabled: false, logger: false },
);
