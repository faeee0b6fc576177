import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setupTelemetry, type TelemetryHandle } from '@amas/otel';
import { type GatewayConfig, readConfig } from './config.js';
import { createGatewayServices, type GatewayServices } from './services.js';
import { runWalkthrough } from './walkthrough.js';

/** Builds a gateway's HTTP handler from its services (an Express app, or a Koa app's `callback()`). */
export type CreateHandler = (services: GatewayServices) => RequestListener;

/** A running gateway: its URL, its services, and how to stop it. */
export interface RunningGateway {
  readonly url: string;
  readonly services: GatewayServices;
  /** `@amas/otel`'s handle: flushes spans and stops tracing on {@link RunningGateway.close}. */
  readonly telemetry: TelemetryHandle;
  close(): Promise<void>;
}

const EXPORTER_VARS = [
  'OTEL_TRACES_EXPORTER',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
];

/**
 * Starts tracing first, before any request: `@amas/otel` with the `OTEL_*` variables of the
 * configuration. Without an exporter or endpoint among them, spans go nowhere (exporter `none`), so the
 * embedded demo prints no export errors.
 */
function startTracing(name: string, config: Readonly<GatewayConfig>): TelemetryHandle {
  const exporting = EXPORTER_VARS.some((v) => config.otelEnv[v] !== undefined);
  return setupTelemetry({
    serviceName: `amas-${name}-gateway`,
    env: config.otelEnv,
    ...(exporting ? {} : { exporter: 'none' as const }),
    signals: false,
  });
}

/**
 * Starts a gateway: tracing first, then services from the configuration (embedded where none is
 * named), the key source warmed up before the first request, then an HTTP server on `HOST:PORT`.
 *
 * @example
 * ```ts
 * const gateway = await startGateway('express', readConfig({ PORT: '0' }), (services) => createApp(services));
 * ```
 */
export async function startGateway(
  name: string,
  config: Readonly<GatewayConfig>,
  createHandler: CreateHandler,
): Promise<RunningGateway> {
  const telemetry = startTracing(name, config);
  const services = await createGatewayServices(config).catch(async (err: unknown) => {
    await telemetry.shutdown().catch(() => undefined);
    throw err;
  });
  try {
    await services.verifier.warmUp();
    const server = createServer(createHandler(services));
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, resolve);
    });
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://${config.host}:${port}`,
      services,
      telemetry,
      async close() {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await services.close();
        await telemetry.shutdown().catch((err: unknown) => console.error(`tracing: ${String(err)}`));
      },
    };
  } catch (err) {
    await services.close();
    await telemetry.shutdown().catch(() => undefined);
    throw err;
  }
}

function describe(name: string, gateway: RunningGateway): string {
  const d = gateway.services.description;
  return `${name} gateway on ${gateway.url}\n  identity: ${d.identity}\n  policy:   ${d.policy}\n  state:    ${d.state}`;
}

/**
 * `pnpm start`: runs a gateway until SIGTERM or SIGINT, then closes connections and services.
 *
 * @example
 * ```ts
 * await serveUntilSignal('express', (services) => createApp(services));
 * ```
 */
export async function serveUntilSignal(name: string, createHandler: CreateHandler): Promise<void> {
  const gateway = await startGateway(name, readConfig(), createHandler);
  console.log(describe(name, gateway));
  const stop = () => {
    gateway.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/**
 * `pnpm demo`: a gateway on embedded defaults and a free port, the scripted walk-through against it,
 * then a clean stop. The exit code says whether every step answered as expected.
 *
 * @example
 * ```ts
 * await runDemo('express', (services) => createApp(services));
 * ```
 */
export async function runDemo(name: string, createHandler: CreateHandler): Promise<void> {
  const gateway = await startGateway(
    name,
    readConfig({ ...process.env, PORT: process.env.PORT ?? '0' }),
    createHandler,
  );
  console.log(describe(name, gateway));
  try {
    const tokenEndpoint = gateway.services.embedded.issuer?.tokenEndpoint;
    if (!tokenEndpoint) throw new Error('the walk-through needs the embedded issuer: unset AMAS_OIDC_ISSUER');
    const steps = await runWalkthrough({ baseUrl: gateway.url, tokenEndpoint });
    process.exitCode = steps.every((s) => s.ok) ? 0 : 1;
  } finally {
    await gateway.close();
  }
}
