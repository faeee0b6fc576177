import { enforceContract, spendBudget } from '@amas/contracts/koa';
import { authenticate, requireClaims, requireScopes } from '@amas/oidc/koa';
import type { Authorization } from '@amas/opa';
import { approvalRoutes, authorize, toPrincipal } from '@amas/opa/koa';
import { traceRequests } from '@amas/otel/koa';
import {
  type Answer,
  type GatewayServices,
  INVOKE_SCOPE,
  readiness,
  runTool,
  toolNotImplemented,
} from '@amas-examples/gateway-common';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa, { type Context, type Middleware } from 'koa';

/** The approval `@amas/opa` consumed to allow this call, if any: the contract check's `approval`. */
function approvalUsed(authorization: Authorization | undefined): { id: string } | undefined {
  return authorization?.outcome === 'allow' && authorization.approval
    ? { id: authorization.approval.id }
    : undefined;
}

function send(ctx: Context, answer: Answer): void {
  ctx.status = answer.status;
  ctx.body = answer.body;
}

/** Turns what escapes the chain into JSON without details: 4xx as they are, anything else 500. */
const lastResort: Middleware = async (ctx, next) => {
  try {
    await next();
    if (ctx.status === 404 && ctx.body === undefined)
      send(ctx, { status: 404, body: { error: 'not_found', message: 'No such route.' } });
  } catch (err) {
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      send(ctx, { status, body: { error: 'bad_request', message: 'The request failed.' } });
      return;
    }
    console.error(`unhandled error: ${err instanceof Error ? err.message : String(err)}`);
    send(ctx, { status: 500, body: { error: 'internal_error', message: 'The request failed.' } });
  }
};

/**
 * The agent tool gateway on Koa 3: every tool call goes through the chain of
 * docs/adr/0003-agent-tool-gateway-pattern.md, in this order.
 */
export function createApp(services: GatewayServices): Koa {
  const { verifier, registry, enforcer, toolbox, config } = services;
  const app = new Koa();
  const router = new Router();
  const role = (ctx: Context) => String(ctx.params.role);
  const tool = (ctx: Context) => String(ctx.params.tool);

  // 1. trace: one server span per request (http.route from the matched template, W3C trace context
  //    from the caller); the spans of oidc, contracts and opa nest under it. Health checks get none.
  app.use(traceRequests({ ignore: ['/healthz', '/readyz'] }));
  app.use(lastResort);

  router.get('/healthz', (ctx) => send(ctx, { status: 200, body: { status: 'ok' } }));
  router.get('/readyz', async (ctx) => send(ctx, await readiness(services)));

  // 2. authenticate: a verified principal on ctx.state.amas.auth, or 401/503 (RFC 6750).
  const auth = authenticate(verifier);
  // An agent acts only as the role its token names.
  const actsAsPathRole: Middleware = (ctx, next) =>
    requireClaims({ [config.roleClaim]: role(ctx) })(ctx, next);
  const json = bodyParser({ enableTypes: ['json'], jsonLimit: '64kb', encoding: 'utf-8' });

  router.post(
    '/v1/agents/:role/tools/:tool',
    auth,
    requireScopes(INVOKE_SCOPE),
    actsAsPathRole,
    json,
    // 3. contract: allowlist, input schema, budget room (spends nothing yet): 400/403/429/503.
    enforceContract(registry, {
      role,
      session: (ctx) => ctx.get('amas-session-id') || undefined,
      spend: false,
    }),
    async (ctx, next) => (toolbox.has(tool(ctx)) ? next() : send(ctx, toolNotImplemented(tool(ctx)))),
    // 4. policy: allow, deny (403), unavailable (503), or escalate (202 + approval); verifies the
    //    approval on the retry (header amas-approval-id).
    authorize({
      enforcer,
      // The contract check already held the body to the tool's schema: an object.
      toolAccess: (ctx) => ({
        agentRole: role(ctx),
        toolName: tool(ctx),
        input: ctx.request.body as Record<string, unknown>,
      }),
      statusUrl: (id) => `/v1/approvals/${encodeURIComponent(id)}`,
    }),
    // 5. spend the budget atomically, now that every check allowed; then the output check.
    spendBudget(registry, { approval: (ctx) => approvalUsed(ctx.state.amas?.opa) }),
    // 6. the tool.
    async (ctx) => send(ctx, await runTool(toolbox, tool(ctx), ctx.request.body)),
  );

  // Approval routes: authenticated; approvers need a scope the policy names (checked per request).
  const approvals = approvalRoutes({
    prefix: '/v1/approvals',
    approvals: enforcer.approvals,
    identity: (ctx) => toPrincipal(ctx.state.amas?.auth),
  });
  app.use(async (ctx, next) => {
    if (ctx.path !== '/v1/approvals' && !ctx.path.startsWith('/v1/approvals/')) return next();
    await auth(ctx, async () => {
      await bodyParser({ enableTypes: ['json'], jsonLimit: '16kb' })(ctx, () => approvals(ctx, next));
    });
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
