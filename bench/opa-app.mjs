// Helper of opa.bench.mjs: one Express 5 app per process, guarding POST /tools/:role/:tool with one
// of the variants below, all against the same OPA-compatible server.
//   amas-uncached  @amas/opa authorize() guard, cache and coalescing off (one OPA call per request)
//   amas-cached    @amas/opa authorize() guard, default decision cache (TTL) on
//   official       @open-policy-agent/opa OPAClient.evaluate() in a hand-written middleware
//   fetch          a minimal hand-written fetch() to the Data API: the floor of the work
//   none           no policy call at all (the app's own cost)
import { createEnforcer } from '@amas/opa';
import { authorize } from '@amas/opa/express';
import { OPAClient } from '@open-policy-agent/opa';
import express from 'express';

const [variant, opaUrl] = process.argv.slice(2);
const app = express();
app.use(express.json());
const route = '/tools/:role/:tool';
const toolInput = (req) => ({
  agent_role: req.params.role,
  tool_name: req.params.tool,
  input: req.body ?? {},
});
const deny = (res, status) => res.status(status).json({ error: 'denied' });

if (variant === 'amas-uncached' || variant === 'amas-cached') {
  const enforcer = createEnforcer({
    url: opaUrl,
    ...(variant === 'amas-uncached' ? { cache: false, coalesce: false } : { cache: { ttlMs: 60_000 } }),
  });
  app.post(
    route,
    authorize({
      enforcer,
      toolAccess: (req) => ({ agentRole: req.params.role, toolName: req.params.tool, input: req.body }),
    }),
  );
} else if (variant === 'official') {
  const client = new OPAClient(opaUrl);
  app.post(route, async (req, res, next) => {
    try {
      const d = await client.evaluate('amas/tool_access/decision', toolInput(req));
      if (d?.allow === true) return next();
      return deny(res, 403);
    } catch {
      return deny(res, 503);
    }
  });
} else if (variant === 'fetch') {
  const url = `${opaUrl}/v1/data/amas/tool_access/decision`;
  app.post(route, async (req, res, next) => {
    try {
      const r = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: toolInput(req) }),
      });
      const body = await r.json();
      if (r.status === 200 && body.result?.allow === true) return next();
      return deny(res, 403);
    } catch {
      return deny(res, 503);
    }
  });
}
app.post(route, (_req, res) => res.json({ ran: true }));

const server = app.listen(0, '127.0.0.1', () =>
  process.send?.({ ready: `http://127.0.0.1:${server.address().port}` }),
);
process.on('message', (m) => {
  if (m.close) server.close(() => process.exit(0));
});
