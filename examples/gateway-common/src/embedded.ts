import { type Registry, toRoleData } from '@amas/contracts';
import { createTestIssuer, type TestIssuer } from '@amas/oidc/testing';
import { type OpaTestServer, startOpaTestServer } from '@amas/opa/testing';
import type { GatewayConfig } from './config.js';
import { DEMO_CLIENTS } from './identities.js';

/** The stand-ins the gateway starts on 127.0.0.1 when no real issuer or OPA is configured. */
export interface EmbeddedServices {
  /** `@amas/oidc/testing`'s issuer, with a `client_credentials` endpoint for {@link DEMO_CLIENTS}. */
  readonly issuer?: TestIssuer;
  /**
   * `@amas/opa/testing`'s OPA-compatible server. It answers OPA's Data API for
   * `amas/tool_access/decision` with `evaluateToolAccess`, the TypeScript twin of
   * `policies/tool_access_policy.rego` (both held to `policies/testdata/decision_table.json`), over the
   * role data exported from the gateway's own contracts, exactly as `amas-contracts export-opa` writes it.
   */
  readonly opa?: OpaTestServer;
  close(): Promise<void>;
}

/** The role data document of the registry's contracts, as `amas-contracts export-opa` writes it. */
export function roleData(registry: Registry): Record<string, unknown> {
  const contracts = registry.roles().flatMap((role) => registry.contract(role) ?? []);
  return toRoleData(contracts) as unknown as Record<string, unknown>;
}

/**
 * Starts what the configuration does not name: the test issuer (no `AMAS_OIDC_ISSUER`) and the
 * OPA-compatible server (no `AMAS_OPA_URL`). Neither is for production: the issuer keeps its keys in
 * memory and the server evaluates one policy in TypeScript.
 *
 * @example
 * ```ts
 * const embedded = await startEmbeddedServices(config, registry);
 * ```
 */
export async function startEmbeddedServices(
  config: Readonly<GatewayConfig>,
  registry: Registry,
): Promise<EmbeddedServices> {
  const issuer = config.issuer
    ? undefined
    : await createTestIssuer({
        audience: config.audience,
        algorithm: 'ES256',
        clients: structuredClone(DEMO_CLIENTS),
      });
  const opa = config.opaUrl
    ? undefined
    : await startOpaTestServer({ data: roleData(registry) }).catch(async (err: unknown) => {
        await issuer?.close();
        throw err;
      });
  return {
    issuer,
    opa,
    async close() {
      await Promise.all([issuer?.close(), opa?.close()]);
    },
  };
}
