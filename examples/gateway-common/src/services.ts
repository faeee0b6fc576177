import {
  createMemoryBudgetStore,
  createRedisBudgetStore,
  createRegistry,
  predefinedRoles,
  type Registry,
} from '@amas/contracts';
import { createVerifier, type Verifier } from '@amas/oidc';
import {
  createEnforcer,
  createMemoryApprovalStore,
  createRedisApprovalStore,
  type Enforcer,
} from '@amas/opa';
import { Redis } from 'ioredis';
import type { GatewayConfig } from './config.js';
import { type EmbeddedServices, startEmbeddedServices } from './embedded.js';
import { createToolbox, type ToolHandler } from './tools/index.js';

/**
 * Connects to Redis before the gateway takes traffic. Commands never queue while the connection is
 * down (`enableOfflineQueue: false`): a check then fails at once, closed, instead of waiting.
 */
async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, {
    connectTimeout: 1000,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: true,
  });
  // Failed commands already fail closed; log connection errors, at most one line every 10 s.
  let lastLog = 0;
  redis.on('error', (err: Error) => {
    if (Date.now() - lastLog < 10_000) return;
    lastLog = Date.now();
    console.error(`redis: ${err.message}`);
  });
  try {
    await redis.connect();
    return redis;
  } catch (err) {
    redis.disconnect();
    throw new Error(
      `AMAS_REDIS_URL: cannot connect to Redis (${err instanceof Error ? err.message : String(err)})`,
    );
  }
}

/** Everything a gateway app needs, built once at start from the configuration. */
export interface GatewayServices {
  readonly config: Readonly<GatewayConfig>;
  /** `@amas/oidc`: who is calling. */
  readonly verifier: Verifier;
  /** `@amas/contracts`: what the caller's role may do, with which input, within which budget. */
  readonly registry: Registry;
  /** `@amas/opa`: what central policy says now; escalations and approvals. */
  readonly enforcer: Enforcer;
  /** The tools this gateway runs, by name. */
  readonly toolbox: ReadonlyMap<string, ToolHandler>;
  /** The embedded issuer and policy server, when the configuration names no real ones. */
  readonly embedded: EmbeddedServices;
  /** What runs where, for the start-up line and the readiness answer. */
  readonly description: Readonly<Record<'identity' | 'policy' | 'state', string>>;
  /** Stops everything this object started (connections, embedded servers). */
  close(): Promise<void>;
}

/**
 * Builds the gateway's services from its configuration: real ones where the configuration names them
 * (issuer, OPA, Redis), embedded ones on 127.0.0.1 otherwise. Fails at start, not on the first request,
 * when a contract or an option is wrong.
 *
 * @example
 * ```ts
 * const services = await createGatewayServices(readConfig());
 * const app = createApp(services);
 * ```
 */
export async function createGatewayServices(config: Readonly<GatewayConfig>): Promise<GatewayServices> {
  const redis = config.redisUrl ? await connectRedis(config.redisUrl) : undefined;
  const registry = createRegistry({
    ...(config.contractsDir ? { paths: [config.contractsDir] } : { contracts: predefinedRoles() }),
    store: redis ? createRedisBudgetStore({ client: redis }) : createMemoryBudgetStore(),
    budgetTimeoutMs: 250,
  });
  const embedded = await startEmbeddedServices(config, registry);
  const verifier = createVerifier({
    issuer: config.issuer ?? embedded.issuer?.issuer ?? '',
    audience: config.audience,
  });
  const enforcer = createEnforcer({
    url: config.opaUrl ?? embedded.opa?.url ?? '',
    approvals: { store: redis ? createRedisApprovalStore({ redis }) : createMemoryApprovalStore() },
  });
  return {
    config,
    verifier,
    registry,
    enforcer,
    toolbox: createToolbox({ sandboxDir: config.sandboxDir, scanTargets: config.scanTargets }),
    embedded,
    description: Object.freeze({
      identity: config.issuer ? `issuer ${config.issuer}` : `embedded test issuer ${embedded.issuer?.issuer}`,
      policy: config.opaUrl ? `OPA ${config.opaUrl}` : `embedded OPA-compatible server ${embedded.opa?.url}`,
      state: redis ? 'Redis (budgets and approvals shared by replicas)' : 'memory (one process)',
    }),
    async close() {
      enforcer.close();
      await verifier.close();
      await embedded.close();
      redis?.disconnect();
    },
  };
}
