import { createRequire } from 'node:module';
import { createTestIssuer, type TestIssuer } from '@amas/oidc/testing';
import { type OpaTestServer, startOpaTestServer } from '@amas/opa/testing';
import { type OtlpReceiver, startOtlpReceiver } from '@amas/otel/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CreateHandler,
  DEMO_CLIENTS,
  type DemoClientId,
  type RunningGateway,
  readConfig,
  runWalkthrough,
  startGateway,
} from '../src/index.js';
import { startRedis } from './redis.js';

const AUDIENCE = 'amas-gateway';

async function token(gateway: RunningGateway, client: DemoClientId): Promise<string> {
  const issuer = gateway.services.embedded.issuer;
  if (!issuer) throw new Error('no embedded issuer');
  return issuer.mint({
    sub: client,
    client_id: client,
    scope: DEMO_CLIENTS[client].scopes.join(' '),
    ...DEMO_CLIENTS[client].claims,
  });
}

async function post(url: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(path, url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
  };
}

/**
 * The end-to-end suite both example gateways pass: the walk-through on embedded defaults, the
 * deployment switches (external issuer, real-OPA URL, Redis), outages, and hostile requests. It runs
 * against the built packages: `@amas/*` resolve to their `dist`.
 */
export function gatewaySuite(name: string, createHandler: CreateHandler): void {
  describe(`${name} gateway`, () => {
    it('composes the built packages, not their sources', () => {
      const require = createRequire(import.meta.url);
      for (const pkg of ['@amas/oidc', '@amas/opa', '@amas/contracts']) {
        expect(require.resolve(pkg)).toMatch(/[/\\]dist[/\\]/);
      }
    });

    describe('on embedded defaults', () => {
      let gateway: RunningGateway;
      beforeAll(async () => {
        gateway = await startGateway(name, readConfig({ PORT: '0' }), createHandler);
      });
      afterAll(() => gateway.close());

      it('tells the whole story of the walk-through, every step as expected', async () => {
        const lines: string[] = [];
        const steps = await runWalkthrough({
          baseUrl: gateway.url,
          tokenEndpoint: gateway.services.embedded.issuer?.tokenEndpoint ?? '',
          print: (l) => lines.push(l),
        });
        expect(steps.map((s) => [s.status, s.code ?? 'ok'])).toEqual([
          [401, 'token_missing'],
          [200, 'ok'],
          [403, 'tool_not_allowed'],
          [403, 'insufficient_scope'],
          [400, 'input_invalid'],
          [429, 'budget_exhausted'],
          [202, 'approval_required'],
          [403, 'approval_forbidden'],
          [200, 'ok'],
          [200, 'ok'],
          [409, 'approval_already_used'],
        ]);
        expect(lines.join('\n')).not.toMatch(/eyJ[\w-]+\.[\w-]+/); // no token is ever printed
      });

      it('answers health and readiness', async () => {
        expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
        const ready = await fetch(`${gateway.url}/readyz`);
        expect(ready.status).toBe(200);
        expect(await ready.json()).toMatchObject({ ready: true, policy: { healthy: true } });
      });

      it('keeps tools inside the sandbox (path traversal is refused, nothing is read)', async () => {
        const auth = { authorization: `Bearer ${await token(gateway, 'auditor-agent')}` };
        for (const path of [
          '../../../../etc/passwd',
          '/etc/passwd',
          'agent-service/../../../package.json',
          'a\u0000b',
        ]) {
          const res = await post(gateway.url, '/v1/agents/security_auditor/tools/read_file', { path }, auth);
          expect([400, 422]).toContain(res.status);
          expect(res.text).not.toContain('root:');
        }
      });

      it('refuses a scan target outside its scope even after the contract and policy allowed the call', async () => {
        const auth = { authorization: `Bearer ${await token(gateway, 'auditor-agent')}` };
        const res = await post(
          gateway.url,
          '/v1/agents/security_auditor/tools/run_scan',
          { target: 'example.com', mode: 'passive' },
          auth,
        );
        expect(res.status).toBe(422);
        expect(res.json.error).toBe('tool_input_rejected');
      });

      it('runs the orchestrator tools, with invoke_agent budgeted per session', async () => {
        const auth = { authorization: `Bearer ${await token(gateway, 'orchestrator-agent')}` };
        const base = '/v1/agents/orchestrator/tools';
        const created = await post(
          gateway.url,
          `${base}/create_task`,
          { title: 'review PR 7', priority: 'high' },
          auth,
        );
        expect(created.status).toBe(200);
        const id = String(created.json.task_id);
        const status = await post(gateway.url, `${base}/get_task_status`, { task_id: id }, auth);
        expect(status.json).toMatchObject({ task_id: id, status: 'open', priority: 'high' });
        const assigned = await post(
          gateway.url,
          `${base}/assign_task`,
          { task_id: id, agent_id: 'reviewer-agent' },
          auth,
        );
        expect(assigned.json).toMatchObject({ status: 'assigned', assignee: 'reviewer-agent' });
        const invoke = { agent_id: 'auditor-agent', task: 'scan the sandbox' };
        const noSession = await post(gateway.url, `${base}/invoke_agent`, invoke, auth);
        expect(noSession.status).toBe(400);
        expect(noSession.json.error).toBe('action_invalid');
        const session = { ...auth, 'amas-session-id': `s-${Date.now()}` };
        const statuses: number[] = [];
        for (let i = 0; i < 61; i++)
          statuses.push((await post(gateway.url, `${base}/invoke_agent`, invoke, session)).status);
        expect(statuses.filter((s) => s === 200)).toHaveLength(60);
        expect(statuses.at(-1)).toBe(429);
        const otherSession = await post(gateway.url, `${base}/invoke_agent`, invoke, {
          ...auth,
          'amas-session-id': 'another',
        });
        expect(otherSession.status).toBe(200);
      });

      it('answers 501 for a tool the contract allows but this gateway does not run', async () => {
        const auth = { authorization: `Bearer ${await token(gateway, 'auditor-agent')}` };
        const res = await post(
          gateway.url,
          '/v1/agents/security_auditor/tools/scan_dependencies',
          { path: 'agent-service' },
          auth,
        );
        expect(res.status).toBe(501);
        expect(res.json.error).toBe('tool_not_implemented');
      });

      it('answers malformed, oversized and unknown requests with JSON and no stack trace', async () => {
        const auth = { authorization: `Bearer ${await token(gateway, 'reviewer-agent')}` };
        const malformed = await post(
          gateway.url,
          '/v1/agents/code_reviewer/tools/read_file',
          '{"path": ',
          auth,
        );
        expect(malformed.status).toBe(400);
        const huge = await post(
          gateway.url,
          '/v1/agents/code_reviewer/tools/read_file',
          { path: 'x'.repeat(200_000) },
          auth,
        );
        expect(huge.status).toBe(413);
        const missing = await post(gateway.url, '/v1/nowhere', {}, auth);
        expect(missing.status).toBe(404);
        for (const r of [malformed, huge, missing]) {
          expect(r.headers.get('content-type')).toMatch(/json/);
          expect(r.text).not.toMatch(/\n\s+at /);
        }
      });

      it('refuses tokens in the query string and approval routes without a token', async () => {
        const t = await token(gateway, 'reviewer-agent');
        const query = await post(gateway.url, `/v1/agents/code_reviewer/tools/list_files?access_token=${t}`, {
          path: '.',
        });
        expect(query.status).toBe(401);
        expect(query.text).not.toContain(t);
        const list = await fetch(`${gateway.url}/v1/approvals`);
        expect(list.status).toBe(401);
      });

      it('refuses a token without the invoke scope', async () => {
        const t = await gateway.services.embedded.issuer?.mint({
          sub: 'x',
          amas_role: 'code_reviewer',
          scope: 'other',
        });
        const res = await post(
          gateway.url,
          '/v1/agents/code_reviewer/tools/list_files',
          { path: '.' },
          { authorization: `Bearer ${t}` },
        );
        expect(res.status).toBe(403);
        expect(res.json.error).toBe('insufficient_scope');
      });
    });

    describe('with tracing exported over OTLP/HTTP', () => {
      let receiver: OtlpReceiver;
      let gateway: RunningGateway;
      beforeAll(async () => {
        receiver = await startOtlpReceiver();
        gateway = await startGateway(
          name,
          readConfig({
            PORT: '0',
            OTEL_EXPORTER_OTLP_ENDPOINT: receiver.baseUrl,
            OTEL_BSP_SCHEDULE_DELAY: '50',
          }),
          createHandler,
        );
      });
      afterAll(async () => {
        await gateway.close();
        await receiver.close();
      });

      it('nests the spans of oidc, contracts and opa under the request span, joined to the caller', async () => {
        const t = await token(gateway, 'reviewer-agent');
        const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
        const callerSpan = '00f067aa0ba902b7';
        const res = await post(
          gateway.url,
          '/v1/agents/code_reviewer/tools/list_files',
          { path: 'agent-service' },
          { authorization: `Bearer ${t}`, traceparent: `00-${traceId}-${callerSpan}-01` },
        );
        expect(res.status).toBe(200);
        await gateway.telemetry.forceFlush();
        const spans = receiver.spans.filter((s) => s.traceId === traceId);
        const server = spans.find((s) => s.kind === 2);
        expect(server?.parentSpanId).toBe(callerSpan);
        expect(server?.attributes).toMatchObject({
          'http.request.method': 'POST',
          'http.route': '/v1/agents/:role/tools/:tool',
          'http.response.status_code': 200,
        });
        const under = (spanName: string) => spans.find((s) => s.name === spanName)?.parentSpanId;
        for (const child of ['amas.oidc.verify', 'amas.contracts.check', 'amas.opa.decide']) {
          expect(under(child), child).toBe(server?.spanId);
        }
        expect(JSON.stringify(spans)).not.toContain(t.split('.')[2]);
      });

      it('marks a denied call on its span without leaking the token', async () => {
        receiver.clear();
        const res = await post(
          gateway.url,
          '/v1/agents/code_reviewer/tools/list_files',
          { path: '.' },
          { authorization: 'Bearer not.a.jwt' },
        );
        expect(res.status).toBe(401);
        await gateway.telemetry.forceFlush();
        const server = receiver.spans.find((s) => s.kind === 2);
        expect(server?.attributes['http.response.status_code']).toBe(401);
        expect(JSON.stringify(receiver.spans)).not.toContain('not.a.jwt');
      });

      it('makes no span for health checks', async () => {
        receiver.clear();
        await fetch(`${gateway.url}/healthz`);
        await gateway.telemetry.forceFlush();
        expect(receiver.spans.filter((s) => s.kind === 2)).toEqual([]);
      });
    });

    describe('with an external issuer and an OPA URL from the environment', () => {
      let issuer: TestIssuer;
      let opa: OpaTestServer;
      let gateway: RunningGateway;
      beforeAll(async () => {
        issuer = await createTestIssuer({ audience: AUDIENCE });
        opa = await startOpaTestServer({
          dataFile: new URL('../../../policies/roles.json', import.meta.url).pathname,
        });
        gateway = await startGateway(
          name,
          readConfig({ PORT: '0', AMAS_OIDC_ISSUER: issuer.issuer, AMAS_OPA_URL: opa.url }),
          createHandler,
        );
      });
      afterAll(async () => {
        await gateway.close();
        await Promise.all([issuer.close(), opa.close()]);
      });

      // Each call has its own input, so that the enforcer's decision cache (1 s) cannot answer it.
      let calls = 0;
      const call = async () => {
        const t = await issuer.mint({ sub: 'agent-7', amas_role: 'code_reviewer', scope: 'agents:invoke' });
        const input = { path: 'agent-service', max_entries: ++calls };
        return post(gateway.url, '/v1/agents/code_reviewer/tools/list_files', input, {
          authorization: `Bearer ${t}`,
        });
      };

      it('uses them and starts nothing embedded', async () => {
        expect(gateway.services.embedded.issuer).toBeUndefined();
        expect(gateway.services.embedded.opa).toBeUndefined();
        const res = await call();
        expect(res.status).toBe(200);
        expect(opa.stats().data).toBeGreaterThan(0);
      });

      it('fails closed with 503 and Retry-After when OPA answers 500, then recovers', async () => {
        await opa.fault({ kind: 'error500' });
        const res = await call();
        expect(res.status).toBe(503);
        expect(res.json.error).toBe('policy_unavailable');
        expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
        const ready = await fetch(`${gateway.url}/readyz`);
        await opa.fault(null);
        expect([200, 503]).toContain(ready.status);
      });

      it('fails closed when OPA is down', async () => {
        await opa.fault({ kind: 'down' });
        try {
          const res = await call();
          expect(res.status).toBe(503);
          expect((await fetch(`${gateway.url}/readyz`)).status).toBe(503);
        } finally {
          await opa.fault(null);
        }
      });
    });

    describe('with Redis: two replicas share budgets and approvals, and a restart loses nothing', () => {
      let redis: Awaited<ReturnType<typeof startRedis>>;
      let issuer: TestIssuer;
      const env = () => ({ PORT: '0', AMAS_OIDC_ISSUER: issuer.issuer, AMAS_REDIS_URL: redis.url });
      beforeAll(async () => {
        redis = await startRedis();
        issuer = await createTestIssuer({ audience: AUDIENCE });
      });
      afterAll(async () => {
        await issuer.close();
        await redis.stop();
      });

      it('spends one budget across replicas and keeps an approval granted on one for the other', async () => {
        const a = await startGateway(name, readConfig(env()), createHandler);
        const b = await startGateway(name, readConfig(env()), createHandler);
        try {
          const reviewer = `Bearer ${await issuer.mint({ sub: 'rev-1', amas_role: 'code_reviewer', scope: 'agents:invoke' })}`;
          const read = (g: RunningGateway) =>
            post(
              g.url,
              '/v1/agents/code_reviewer/tools/read_file',
              { path: 'agent-service/README.md', max_bytes: 1048576 },
              { authorization: reviewer },
            );
          const statuses: number[] = [];
          for (let i = 0; i < 12; i++) statuses.push((await read(i % 2 === 0 ? a : b)).status);
          expect(statuses.filter((s) => s === 200)).toHaveLength(10);
          expect(statuses.slice(10)).toEqual([429, 429]);

          const auditor = `Bearer ${await issuer.mint({ sub: 'aud-1', amas_role: 'security_auditor', scope: 'agents:invoke' })}`;
          const lead = `Bearer ${await issuer.mint({ sub: 'lead-1', scope: 'approvals:security' })}`;
          const scan = { target: '127.0.0.1', mode: 'active', ports: [1] };
          const escalated = await post(a.url, '/v1/agents/security_auditor/tools/run_scan', scan, {
            authorization: auditor,
          });
          expect(escalated.status).toBe(202);
          const id = (escalated.json.approval as { id: string }).id;
          await a.close();
          const approved = await post(
            b.url,
            `/v1/approvals/${id}/approve`,
            { reason: 'ok' },
            { authorization: lead },
          );
          expect(approved.status).toBe(200);
          const c = await startGateway(name, readConfig(env()), createHandler);
          try {
            const run = await post(c.url, '/v1/agents/security_auditor/tools/run_scan', scan, {
              authorization: auditor,
              'amas-approval-id': id,
            });
            expect(run.status).toBe(200);
            const replay = await post(b.url, '/v1/agents/security_auditor/tools/run_scan', scan, {
              authorization: auditor,
              'amas-approval-id': id,
            });
            expect(replay.status).toBe(409);
            expect((await read(c)).status).toBe(429);
          } finally {
            await c.close();
          }
        } finally {
          await b.close();
          await a.close().catch(() => undefined);
        }
      });

      it('refuses to start when Redis cannot be reached, naming the variable', async () => {
        const dead = await startRedis();
        await dead.stop();
        await expect(
          startGateway(name, readConfig({ ...env(), AMAS_REDIS_URL: dead.url }), createHandler),
        ).rejects.toThrow(/AMAS_REDIS_URL/);
      });

      it('denies with 503 budget_store_unavailable when Redis is gone', async () => {
        const g = await startGateway(name, readConfig(env()), createHandler);
        const other = await startRedis();
        await g.close();
        const broken = await startGateway(
          name,
          readConfig({ ...env(), AMAS_REDIS_URL: other.url }),
          createHandler,
        );
        await other.stop();
        try {
          const t = `Bearer ${await issuer.mint({ sub: 'rev-2', amas_role: 'code_reviewer', scope: 'agents:invoke' })}`;
          const res = await post(
            broken.url,
            '/v1/agents/code_reviewer/tools/read_file',
            { path: 'agent-service/README.md' },
            { authorization: t },
          );
          expect(res.status).toBe(503);
          expect(res.json.error).toBe('budget_store_unavailable');
        } finally {
          await broken.close();
        }
      });
    });
  });
}
