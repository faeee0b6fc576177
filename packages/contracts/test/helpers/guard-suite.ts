import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../src/registry.js';
import type { BudgetStore, Registry } from '../../src/types.js';
import { sampleContract } from './contracts.js';

/**
 * What every adapter must do, run against a real server of that framework on 127.0.0.1.
 * The app under test:
 *  - sets the principal where @amas/oidc would (`amas.auth.subject`, `amas.auth.issuer`) from `x-sub`
 *    and `x-iss` ({@link authFrom}; `x-iss: #number` sets a numeric issuer, as a forged state would);
 *  - guards `POST /tools/:tool` with the role from `x-role`, the session from `x-session`, and an approval
 *    looked up server-side from the ticket in `x-ticket` (the table `approvals`);
 *  - its handler counts calls and answers `{ content, verdict }`, or a bad output when `path` asks for one.
 */
/** The `amas.auth` a test app sets from the request's `x-sub` and `x-iss` headers. */
export function authFrom(sub: string | undefined, iss: string | undefined): Record<string, unknown> {
  return {
    subject: sub || undefined,
    ...(iss === undefined ? {} : { issuer: iss === '#number' ? 42 : iss }),
  };
}

export interface GuardApp {
  readonly url: string;
  readonly handled: () => number;
  close(): Promise<void>;
}
type Answer = { error?: string; errors?: unknown };

export type StartApp = (
  registry: Registry,
  approvals: ReadonlyMap<string, { id: string }>,
) => Promise<GuardApp>;

export function guardSuite(name: string, start: StartApp): void {
  const approvals = new Map([['ticket-1', { id: 'approval-1' }]]);

  async function withApp(fn: (app: GuardApp) => Promise<void>, store?: BudgetStore) {
    const registry = createRegistry({
      contracts: [sampleContract()],
      ...(store ? { store, budgetTimeoutMs: 100 } : {}),
    });
    const app = await start(registry, approvals);
    try {
      await fn(app);
    } finally {
      await app.close();
    }
  }

  const call = (app: GuardApp, tool: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${app.url}/tools/${tool}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-role': 'reader', 'x-sub': 'alice', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  describe(`${name}: enforceContract`, () => {
    it('lets an allowed call through and puts the verdict on the request state', async () => {
      await withApp(async (app) => {
        const res = await call(app, 'read_file', { path: 'a.txt' });
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({ content: 'hello', verdict: 'allowed:2.1.0' });
        expect(app.handled()).toBe(1);
      });
    });

    it('answers 400 input_invalid with per-field errors, and never runs the tool', async () => {
      await withApp(async (app) => {
        const res = await call(app, 'read_file', { max_bytes: 'lots' });
        expect(res.status).toBe(400);
        const body = await res.json();
        expect(body).toMatchObject({
          error: 'input_invalid',
          errors: expect.arrayContaining([{ path: '/path', message: '/path is required' }]),
        });
        expect(JSON.stringify(body)).not.toContain('lots');
        expect(app.handled()).toBe(0);
      });
    });

    it('answers 400 for a prototype-pollution body, and pollutes nothing', async () => {
      await withApp(async (app) => {
        const res = await call(app, 'read_file', '{"path":"a","__proto__":{"isAdmin":true}}');
        expect(res.status).toBe(400);
        expect(((await res.json()) as Answer).errors).toEqual([
          { path: '/__proto__', message: '/__proto__ is a forbidden key' },
        ]);
        expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
        expect(app.handled()).toBe(0);
      });
    });

    it('answers 403 tool_not_allowed and 403 role_unknown', async () => {
      await withApp(async (app) => {
        const a = await call(app, 'delete_file', { path: 'a' });
        expect(a.status).toBe(403);
        expect(await a.json()).toEqual({
          error: 'tool_not_allowed',
          message: 'the role "reader" may not call this tool',
        });
        const b = await call(app, 'read_file', { path: 'a' }, { 'x-role': 'nobody' });
        expect(b.status).toBe(403);
        expect(((await b.json()) as Answer).error).toBe('role_unknown');
        const c = await fetch(`${app.url}/tools/read_file`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        expect(c.status).toBe(403);
        expect(app.handled()).toBe(0);
      });
    });

    it('answers 403 approval_required with the approvers, then allows the call once the server verified an approval', async () => {
      await withApp(async (app) => {
        const res = await call(app, 'wipe', {});
        expect(res.status).toBe(403);
        expect(await res.json()).toMatchObject({
          error: 'approval_required',
          approval: { approvers: ['approvals:admin'], ttl_seconds: 60 },
        });
        const unknown = await call(app, 'wipe', {}, { 'x-ticket': 'forged' });
        expect(unknown.status).toBe(403);
        const ok = await call(app, 'wipe', {}, { 'x-ticket': 'ticket-1' });
        expect(ok.status).toBe(200);
        expect(app.handled()).toBe(1);
      });
    });

    it('answers 429 with Retry-After once a budget is spent', async () => {
      await withApp(async (app) => {
        const chat = () => call(app, 'chat', { text: 'hi' }, { 'x-session': 's1' });
        expect((await chat()).status).toBe(200);
        expect((await chat()).status).toBe(200);
        const res = await chat();
        expect(res.status).toBe(429);
        const retry = Number(res.headers.get('retry-after'));
        expect(retry).toBeGreaterThanOrEqual(1);
        expect(retry).toBeLessThanOrEqual(60);
        expect(await res.json()).toMatchObject({
          error: 'budget_exhausted',
          budget: { tool: 'chat', limit: 2, per: 'session' },
        });
        expect(app.handled()).toBe(2);
      });
    });

    it('counts a per-principal budget per issuer and subject: the same sub of another issuer has its own', async () => {
      await withApp(async (app) => {
        const read = (iss?: string) =>
          call(app, 'read_file', { path: 'a', max_bytes: 1 }, iss === undefined ? {} : { 'x-iss': iss });
        for (let i = 0; i < 5; i++) expect((await read('https://a.example/')).status).toBe(200);
        const spent = await read('https://a.example/');
        expect(spent.status).toBe(429);
        expect(await spent.json()).toMatchObject({ budget: { effect: 'file.read', per: 'principal' } });
        expect((await read('https://b.example/')).status).toBe(200);
        expect((await read()).status).toBe(200);
        expect(app.handled()).toBe(7);
      });
    });

    it('denies a budgeted call when the principal carries an issuer that is not a non-empty string', async () => {
      await withApp(async (app) => {
        for (const iss of ['#number', '']) {
          const res = await call(app, 'read_file', { path: 'a' }, { 'x-iss': iss });
          expect(res.status).toBe(400);
          expect(((await res.json()) as Answer).error).toBe('action_invalid');
        }
        expect(app.handled()).toBe(0);
      });
    });

    it('answers 503 budget_store_unavailable when the store is down, and never runs the tool', async () => {
      const hang = () => new Promise<never>(() => {});
      const down: BudgetStore = { consume: hang, peek: hang };
      await withApp(async (app) => {
        const res = await call(app, 'read_file', { path: 'a' });
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(((await res.json()) as Answer).error).toBe('budget_store_unavailable');
        expect(app.handled()).toBe(0);
      }, down);
    });

    it('replaces an output that breaks the output schema with 502 output_invalid', async () => {
      await withApp(async (app) => {
        const res = await call(app, 'read_file', { path: 'bad-output' });
        expect(res.status).toBe(502);
        const body = await res.json();
        expect(body).toMatchObject({
          error: 'output_invalid',
          errors: [{ path: '/content', message: '/content must be string' }],
        });
        expect(JSON.stringify(body)).not.toContain('secret-value');
      });
    });

    it('refuses a 2xx answer that is not JSON when the tool has an output schema', async () => {
      await withApp(async (app) => {
        const res = await call(app, 'read_file', { path: 'text-output' });
        expect(res.status).toBe(502);
        expect(((await res.json()) as Answer).error).toBe('output_invalid');
      });
    });

    it('passes error answers and tools without an output schema through unchecked', async () => {
      await withApp(async (app) => {
        const missing = await call(app, 'read_file', { path: 'missing' });
        expect(missing.status).toBe(404);
        expect(await missing.json()).toEqual({ oops: 1 });
        const chat = await call(app, 'chat', { text: 'x' }, { 'x-session': 's9' });
        expect(chat.status).toBe(200);
      });
    });
  });
}

/**
 * The gateway order of ADR 0003: the contract guard checks without spending, a policy step decides, and
 * `spendBudget` spends. The app's stand-in policy step (counting its calls) answers 403 `policy_denied` for
 * `x-policy: deny`; for a call that awaits approval it escalates (202) unless `x-ticket` names a known
 * approval, which it then hands on as `amas.opa.approval`; `x-policy: ignore-approval` lets everything
 * through without an approval (a broken policy, to show the contract still holds).
 */
export interface TwoStepApp extends GuardApp {
  readonly policyCalls: () => number;
}
export type StartTwoStep = (
  registry: Registry,
  approvals: ReadonlyMap<string, { id: string }>,
  wiring: 'guarded' | 'spend-only',
) => Promise<TwoStepApp>;

export function twoStepSuite(name: string, start: StartTwoStep): void {
  const approvals = new Map([['ticket-1', { id: 'approval-1' }]]);
  const call = (app: GuardApp, tool: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${app.url}/tools/${tool}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-role': 'reader', 'x-sub': 'alice', ...headers },
      body: JSON.stringify(body),
    });

  async function withApp(
    fn: (app: TwoStepApp) => Promise<void>,
    wiring: 'guarded' | 'spend-only' = 'guarded',
  ) {
    const app = await start(createRegistry({ contracts: [sampleContract()] }), approvals, wiring);
    try {
      await fn(app);
    } finally {
      await app.close();
    }
  }

  describe(`${name}: enforceContract({ spend: false }) + policy + spendBudget`, () => {
    it('spends only for calls the policy allowed', async () => {
      await withApp(async (app) => {
        const chat = (h: Record<string, string> = {}) =>
          call(app, 'chat', { text: 'hi' }, { 'x-session': 's1', ...h });
        for (let i = 0; i < 5; i++) expect((await chat({ 'x-policy': 'deny' })).status).toBe(403);
        expect((await chat()).status).toBe(200);
        expect((await chat()).status).toBe(200);
        const res = await chat();
        expect(res.status).toBe(429);
        expect(res.headers.get('retry-after')).toBeTruthy();
        expect(app.handled()).toBe(2);
      });
    });

    it('an over-budget call never reaches the policy step', async () => {
      await withApp(async (app) => {
        const chat = () => call(app, 'chat', { text: 'hi' }, { 'x-session': 's2' });
        await chat();
        await chat();
        const before = app.policyCalls();
        expect((await chat()).status).toBe(429);
        expect((await call(app, 'read_file', {})).status).toBe(400);
        expect(app.policyCalls()).toBe(before);
      });
    });

    it('a call awaiting approval goes on to the policy, is escalated without spending, and runs once approved', async () => {
      await withApp(async (app) => {
        const post = { url: 'https://x.test/', method: 'POST' };
        for (let i = 0; i < 4; i++) expect((await call(app, 'fetch_url', post)).status).toBe(202);
        expect(app.handled()).toBe(0);
        for (let i = 0; i < 3; i++)
          expect((await call(app, 'fetch_url', post, { 'x-ticket': 'ticket-1' })).status).toBe(200);
        expect((await call(app, 'fetch_url', post, { 'x-ticket': 'ticket-1' })).status).toBe(429);
        expect(app.handled()).toBe(3);
      });
    });

    it('still demands the approval when the policy step lets the call through without one', async () => {
      await withApp(async (app) => {
        const res = await call(app, 'wipe', {}, { 'x-policy': 'ignore-approval' });
        expect(res.status).toBe(403);
        expect(((await res.json()) as Answer).error).toBe('approval_required');
        expect(app.handled()).toBe(0);
      });
    });

    it('checks the output at the spending step', async () => {
      await withApp(async (app) => {
        expect((await call(app, 'read_file', { path: 'bad-output' })).status).toBe(502);
      });
    });

    it('answers 500 config_invalid, and never runs the tool, when spendBudget has no guard before it', async () => {
      await withApp(async (app) => {
        const res = await call(app, 'read_file', { path: 'a' });
        expect(res.status).toBe(500);
        expect(((await res.json()) as Answer).error).toBe('config_invalid');
        expect(app.handled()).toBe(0);
      }, 'spend-only');
    });
  });
}
