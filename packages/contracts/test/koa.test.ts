import type { Server } from 'node:http';
import Router from '@koa/router';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { describe, expect, it } from 'vitest';
import { ContractError } from '../src/errors.js';
import { enforceContract, errorHandler, spendBudget } from '../src/koa.js';
import { createRegistry } from '../src/registry.js';
import { sampleContract } from './helpers/contracts.js';
import {
  authFrom,
  guardSuite,
  type StartApp,
  type StartTwoStep,
  twoStepSuite,
} from './helpers/guard-suite.js';

type KoaCtor = typeof Koa3;

/** The smallest JSON body parser, so the test depends on no parser package. */
const jsonBody: Koa3.Middleware = async (ctx, next) => {
  const chunks: Buffer[] = [];
  for await (const c of ctx.req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  (ctx.request as { body?: unknown }).body = text ? JSON.parse(text) : undefined;
  await next();
};

async function listen(app: Koa3): Promise<{ server: Server; url: string }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

function startWith(Koa: KoaCtor): StartApp {
  return async (registry, approvals) => {
    let handled = 0;
    const app = new Koa();
    const router = new Router();
    app.use(jsonBody);
    app.use(async (ctx, next) => {
      ctx.state.amas = { auth: authFrom(ctx.get('x-sub'), ctx.req.headers['x-iss'] as string | undefined) };
      await next();
    });
    router.post(
      '/tools/:tool',
      enforceContract(registry, {
        role: (ctx) => ctx.get('x-role') || undefined,
        session: (ctx) => ctx.get('x-session') || undefined,
        approval: (ctx) => approvals.get(ctx.get('x-ticket')),
      }),
      (ctx) => {
        handled++;
        const v = ctx.state.amas!.contracts as { code: string; version: string };
        const path = (ctx.request as { body?: { path?: string } }).body?.path;
        if (path === 'bad-output') ctx.body = { content: 1, leaked: 'secret-value' };
        else if (path === 'text-output') ctx.body = 'plain text';
        else if (path === 'missing') {
          ctx.status = 404;
          ctx.body = { oops: 1 };
        } else ctx.body = { content: 'hello', verdict: `${v.code}:${v.version}` };
      },
    );
    app.use(router.routes());
    const { server, url } = await listen(app);
    return {
      url,
      handled: () => handled,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  };
}

function twoStepWith(Koa: KoaCtor): StartTwoStep {
  return async (registry, approvals, wiring) => {
    let handled = 0;
    let policyCalls = 0;
    const app = new Koa();
    const router = new Router();
    app.use(jsonBody);
    app.use(async (ctx, next) => {
      ctx.state.amas = { auth: authFrom(ctx.get('x-sub'), ctx.req.headers['x-iss'] as string | undefined) };
      await next();
    });
    const guard = enforceContract(registry, {
      role: (ctx) => ctx.get('x-role') || undefined,
      session: (ctx) => ctx.get('x-session') || undefined,
      spend: false,
    });
    const policy: Koa3.Middleware = async (ctx, next) => {
      policyCalls++;
      const mode = ctx.get('x-policy');
      if (mode === 'deny') {
        ctx.status = 403;
        ctx.body = { error: 'policy_denied' };
        return;
      }
      if (mode !== 'ignore-approval' && ctx.state.amas?.contracts?.code === 'approval_required') {
        const approval = approvals.get(ctx.get('x-ticket'));
        if (!approval) {
          ctx.status = 202;
          ctx.body = { approval: 'pending' };
          return;
        }
        ctx.state.amas = { ...ctx.state.amas, opa: { approval } };
      }
      await next();
    };
    const spend = spendBudget(registry, { approval: (ctx) => ctx.state.amas?.opa?.approval });
    const handler: Koa3.Middleware = (ctx) => {
      handled++;
      const path = (ctx.request as { body?: { path?: string } }).body?.path;
      ctx.body = path === 'bad-output' ? { content: 1 } : { content: 'hello' };
    };
    if (wiring === 'guarded') router.post('/tools/:tool', guard, policy, spend, handler);
    else router.post('/tools/:tool', spend, handler);
    app.use(router.routes());
    const { server, url } = await listen(app);
    return {
      url,
      handled: () => handled,
      policyCalls: () => policyCalls,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  };
}

guardSuite('koa 3', startWith(Koa3));
guardSuite('koa 2', startWith(Koa2 as unknown as KoaCtor));
twoStepSuite('koa 3', twoStepWith(Koa3));
twoStepSuite('koa 2', twoStepWith(Koa2 as unknown as KoaCtor));

describe('koa adapter options', () => {
  const registry = createRegistry({ contracts: [sampleContract()] });

  it('validates options at the factory and names the option', () => {
    expect(() => enforceContract(registry, {} as never)).toThrow(/role/);
    expect(() => enforceContract(registry, { role: () => 'x', validateOutput: 'yes' } as never)).toThrow(
      /validateOutput/,
    );
  });

  it('errorHandler answers a ContractError thrown further down with its status and headers', async () => {
    const app = new Koa3();
    app.use(errorHandler());
    app.use(() => {
      throw new ContractError('tool_not_allowed', 'no');
    });
    const { server, url } = await listen(app);
    try {
      const res = await fetch(url);
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ error: 'tool_not_allowed', message: 'no' });
    } finally {
      server.close();
    }
  });
});
