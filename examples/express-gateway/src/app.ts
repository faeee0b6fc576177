import { enforceContract, spendBudget } from '@amas/contracts/express';
import { authenticate, requireClaims, requireScopes } from '@amas/oidc/express';
import type { Authorization } from '@amas/opa';
import { approvalRoutes, authorize, toPrincipal } from '@amas/opa/express';
import { recordErrors, traceRequests } from '@amas/otel/express';
import {
  type GatewayServices,
  INVOKE_SCOPE,
  readiness,
  runTool,
  toolNotImplemented,
} from '@amas-examples/gateway-common';
import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';

/** The approval `@amas/opa` consumed to allow this call, if any: the contract check's `approval`. */
function approvalUsed(authorization: Authorization | undefined): { id: string } | undefined {
  return authorization?.outcome === 'allow' && authorization.approval
    ? { id: authorization.approval.id }
    : undefined;
}

/**
 * The agent tool gateway on Express 5: every tool call goes through the chain of
 * docs/adr/0003-agent-tool-gateway-pattern.md, in this order.
 */
export function createApp(services: GatewayServices): express.Express {
  const { verifier, registry, enforcer, toolbox, config } = services;
  const app = express();
  app.disable('x-powered-by');

  // 1. trace: one server span per request (http.route from the matched template, W3C trace context
  //    from the caller); the spans of oidc, contracts and opa nest under it. Health checks get none.
  app.use(traceRequests({ ignore: ['/healthz', '/readyz'] }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const ready = await readiness(services);
    res.status(ready.status).json(ready.body);
  });

  // 2. authenticate: a verified principal on req.amas.auth, or 401/503 (RFC 6750).
  const auth = authenticate(verifier);
  // An agent acts only as the role its token names.
  const actsAsPathRole: RequestHandler = (req, res, next) =>
    requireClaims({ [config.roleClaim]: String(req.params.role) })(req, res, next);

  const role = (req: Request) => String(req.params.role);
  const tool = (req: Request) => String(req.params.tool);

  app.post(
    '/v1/agents/:role/tools/:tool',
    auth,
    requireScopes(INVOKE_SCOPE),
    actsAsPathRole,
    express.json({ limit: '64kb' }),
    // 3. contract: allowlist, input schema, budget room (spends nothing yet): 400/403/429/503.
    enforceContract(registry, { role, session: (req) => req.get('amas-session-id'), spend: false }),
    (req, res, next) => {
      if (toolbox.has(tool(req))) return next();
      const answer = toolNotImplemented(tool(req));
      res.status(answer.status).json(answer.body);
    },
    // 4. policy: allow, deny (403), unavailable (503), or escalate (202 + approval); verifies the
    //    approval on the retry (header amas-approval-id).
    authorize({
      enforcer,
      toolAccess: (req) => ({ agentRole: role(req), toolName: tool(req), input: req.body }),
      statusUrl: (id) => `/v1/approvals/${encodeURIComponent(id)}`,
    }),
    // 5. spend the budget atomically, now that every check allowed; then the output check on res.json.
    spendBudget(registry, { approval: (req) => approvalUsed(req.amas?.opa) }),
    // 6. the tool.
    async (req, res) => {
      const answer = await runTool(toolbox, tool(req), req.body);
      res.status(answer.status).json(answer.body);
    },
  );

  // Approval routes: authenticated; approvers need a scope the policy names (checked per request).
  app.use(
    '/v1/approvals',
    auth,
    express.json({ limit: '16kb' }),
    approvalRoutes({ approvals: enforcer.approvals, identity: (req) => toPrincipal(req.amas?.auth) }),
  );

  app.use((_req, res) => {
    res.status(404).json({ error: 'not_found', message: 'No such route.' });
  });
  const lastResort: ErrorRequestHandler = (err, _req, res, _next) => {
    const status =
      typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) console.error(`unhandled error: ${err instanceof Error ? err.message : String(err)}`);
    res
      .status(status)
      .json({ error: status === 500 ? 'internal_error' : 'bad_request', message: 'The request failed.' });
  };
  app.use(recordErrors(), lastResort);
  return app;
}
