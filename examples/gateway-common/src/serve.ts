import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type GatewayConfig, readConfig } from './config.js';
import { createGatewayServices, type GatewayServices } from './services.js';
import { runWalkthrough } from './walkthrough.js';

/** Builds a gateway's HTTP handler from its services (an Express app, or a Koa app's `callback()`). */
export type CreateHandler = (services: GatewayServices) => RequestListener;

/** A running gateway: its URL, its services, and how to stop it. */
export interface RunningGateway {
  readonly url: string;
  readonly services: GatewayServices;
  close(): Promise<void>;
}

/**
 * Starts a gateway: services from the configuration (embedded where none is named), the key source
 * warmed up before the first request, then an HTTP server on `HOST:PORT`.
 *
 * @example
 * ```ts
 * const gateway = await startGateway(readConfig({ PORT: '0' }), (services) => createApp(services));
 * ```
 */
export async function startGateway(
  config: Readonly<GatewayConfig>,
  createHandler: CreateHandler,
): Promise<RunningGateway> {
  const services = await createGatewayServices(config);
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
      async close() {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await services.close();
      },
    };
  } catch (err) {
    await services.close();
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
  const gateway = await startGateway(readConfig(), createHandler);
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
