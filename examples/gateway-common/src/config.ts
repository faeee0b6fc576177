import { fileURLToPath } from 'node:url';
import * as z from 'zod';

/**
 * The gateway's configuration, read once from the environment at start. Every variable is optional:
 * without any, the gateway runs on embedded defaults (a test issuer and an OPA-compatible server on
 * 127.0.0.1, memory stores, no trace export). Each variable switches one part to a real deployment.
 */
export interface GatewayConfig {
  /** `HOST` (default `127.0.0.1`). */
  host: string;
  /** `PORT` (default `3000`; `0` picks a free port). */
  port: number;
  /** `AMAS_OIDC_ISSUER`: an external OpenID Provider; unset runs the embedded test issuer. */
  issuer?: string;
  /** `AMAS_OIDC_AUDIENCE` (default `amas-gateway`): the `aud` access tokens must carry. */
  audience: string;
  /** `AMAS_OPA_URL`: a real OPA serving `policies/`; unset runs the embedded OPA-compatible server. */
  opaUrl?: string;
  /** `AMAS_REDIS_URL`: budgets and approvals in Redis (several replicas); unset keeps them in memory. */
  redisUrl?: string;
  /** `AMAS_CONTRACTS_DIR`: your role contract files; unset uses the roles `@amas/contracts` ships. */
  contractsDir?: string;
  /** `AMAS_SANDBOX_DIR` (default: the examples' `sandbox/` folder): the only files the tools may read. */
  sandboxDir: string;
  /** `AMAS_ROLE_CLAIM` (default `amas_role`): the token claim that names the caller's agent role. */
  roleClaim: string;
  /** `AMAS_PUBLIC_URL`: the base URL clients use, for approval status links (default from host and port). */
  publicUrl?: string;
  /** `AMAS_SCAN_TARGETS` (default `127.0.0.1,localhost`): the only hosts `run_scan` may scan. */
  scanTargets: readonly string[];
  /**
   * The `OTEL_*` variables, read by `@amas/otel` with the specification's precedence. Tracing exports
   * only when one of them names an exporter or an endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`,
   * `OTEL_TRACES_EXPORTER=console`, ...); otherwise spans are made for nobody (exporter `none`).
   */
  otelEnv: Readonly<Record<string, string>>;
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const url = (name: string) =>
  z
    .string()
    .url(`${name} must be an absolute URL`)
    .refine((u) => /^(https?|rediss?):/.test(u), `${name} must be an http(s) or redis(s) URL`);

const schema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int('PORT must be an integer').min(0).max(65535).default(3000),
  AMAS_OIDC_ISSUER: url('AMAS_OIDC_ISSUER').optional(),
  AMAS_OIDC_AUDIENCE: z.string().min(1).default('amas-gateway'),
  AMAS_OPA_URL: url('AMAS_OPA_URL').optional(),
  AMAS_REDIS_URL: url('AMAS_REDIS_URL').optional(),
  AMAS_CONTRACTS_DIR: z.string().min(1).optional(),
  AMAS_SANDBOX_DIR: z.string().min(1).default(here('../sandbox')),
  AMAS_ROLE_CLAIM: z.string().min(1).default('amas_role'),
  AMAS_PUBLIC_URL: url('AMAS_PUBLIC_URL').optional(),
  AMAS_SCAN_TARGETS: z
    .string()
    .default('127.0.0.1,localhost')
    .transform((v) =>
      v
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    ),
});

/** The environment variables the gateway reads; the compose file and the docs list the same. */
export const GATEWAY_ENV_VARS = Object.freeze(Object.keys(schema.shape));

/**
 * Reads and checks the configuration. A bad value stops the start with a message naming the variable.
 *
 * @example
 * ```ts
 * const config = readConfig(process.env);
 * ```
 */
export function readConfig(env: NodeJS.ProcessEnv = process.env): Readonly<GatewayConfig> {
  const blankless = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(blankless);
  if (!parsed.success) {
    throw new Error(`invalid gateway configuration:\n${z.prettifyError(parsed.error)}`);
  }
  const e = parsed.data;
  return Object.freeze({
    host: e.HOST,
    port: e.PORT,
    issuer: e.AMAS_OIDC_ISSUER,
    audience: e.AMAS_OIDC_AUDIENCE,
    opaUrl: e.AMAS_OPA_URL,
    redisUrl: e.AMAS_REDIS_URL,
    contractsDir: e.AMAS_CONTRACTS_DIR,
    sandboxDir: e.AMAS_SANDBOX_DIR,
    roleClaim: e.AMAS_ROLE_CLAIM,
    publicUrl: e.AMAS_PUBLIC_URL,
    scanTargets: Object.freeze(e.AMAS_SCAN_TARGETS),
    otelEnv: Object.freeze(
      Object.fromEntries(Object.entries(blankless).filter(([k]) => k.startsWith('OTEL_'))) as Record<
        string,
        string
      >,
    ),
  });
}
