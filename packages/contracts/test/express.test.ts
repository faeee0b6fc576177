import type { Server } from 'node:http';
import express5 from 'express';
import express4 from 'express4';
import { describe, expect, it } from 'vitest';
import { ContractError } from '../src/errors.js';
import { enforceContract, errorHandler, spendBudget } from '../src/express.js';
import { createRegistry } from '../src/registry.js';
import { sampleContract } from './helpers/contracts.js';
import {
  authFrom,
  guardSuite,
  type StartApp,
  type StartTwoStep,
  twoStepSuite,
} from './helpers/guard-suite.js';

type Express = typeof express5;

function startWith(express: Express): StartApp {
  return async (registry, approvals) => {
    let handled = 0;
    const app = express();
    app.use(express.json());
    app.use((req, _res, next) => {
      (req as unknown as { amas: unknown }).amas = { auth: authFrom(req.get('x-sub'), req.get('x-iss')) };
      next();
    });
    app.post(
      '/tools/:tool',
      enforceContract(registry, {
        role: (req) => req.get('x-role'),
        session: (req) => req.get('x-session'),
        approval: (req) => approvals.get(req.get('x-ticket') ?? ''),
      }),
      (req, res) => {
        handled++;
        const v = (req as unknown as { amas: { contracts: { code: string; version: string } } }).amas
          .contracts;
        const path = (req.body as { path?: string }).path;
        if (path === 'bad-output') return void res.json({ content: 1, leaked: 'secret-value' });
        if (path === 'text-output') return void res.send('plain text');
        if (path === 'missing') return void res.status(404).json({ oops: 1 });
        res.json({ content: 'hello', verdict: `${v.code}:${v.version}` });
      },
    );
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const { port } = server.address() as { port: number };
    return {
      url: `http://127.0.0.1:${port}`,
      handled: () => handled,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  };
}

type Req = express5.Request & { amas: { contracts: { code: string }; opa?: { approval: { id: string } } } };

function twoStepWith(express: Express): StartTwoStep {
  return async (registry, approvals, wiring) => {
    let handled = 0;
    let policyCalls = 0;
    const app = express();
    app.use(express.json());
    app.use((req, _res, next) => {
      (req as unknown as { amas: unknown }).amas = { auth: authFrom(req.get('x-sub'), req.get('x-iss')) };
      next();
    });
    const guard = enforceContract(registry, {
      role: (req) => req.get('x-role'),
      session: (req) => req.get('x-session'),
      spend: false,
    });
    const policy: express5.RequestHandler = (req, res, next) => {
      policyCalls++;
      const r = req as Req;
      const mode = req.get('x-policy');
      if (mode === 'deny') return void res.status(403).json({ error: 'policy_denied' });
      if (mode === 'ignore-approval') return next();
      if (r.amas.contracts.code === 'approval_required') {
        const approval = approvals.get(req.get('x-ticket') ?? '');
        if (!approval) return void res.status(202).json({ approval: 'pending' });
        r.amas.opa = { approval };
      }
      next();
    };
    const spend = spendBudget(registry, { approval: (req) => (req as Req).amas.opa?.approval });
    const handler: express5.RequestHandler = (req, res) => {
      handled++;
      const path = (req.body as { path?: string }).path;
      if (path === 'bad-output') return void res.json({ content: 1 });
      res.json({ content: 'hello' });
    };
    if (wiring === 'guarded') app.post('/tools/:tool', guard, policy, spend, handler);
    else app.post('/tools/:tool', spend, handler);
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const { port } = server.address() as { port: number };
    return {
      url: `http://127.0.0.1:${port}`,
      handled: () => handled,
      policyCalls: () => policyCalls,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  };
}

guardSuite('express 5', startWith(express5));
guardSuite('express 4', startWith(express4 as unknown as Express));
twoStepSuite('express 5', twoStepWith(express5));
twoStepSuite('express 4', twoStepWith(express4 as unknown as Express));

describe('express adapter options', () => {
  const registry = createRegistry({ contracts: [sampleContract()] });

  it('validates options at the factory and names the option', () => {
    expect(() => enforceContract(registry, {} as never)).toThrow(/role/);
    expect(() => enforceContract(registry, { role: () => 'x', tool: 'read_file' } as never)).toThrow(
      /tool must be a function/,
    );
    expect(() => enforceContract({} as never, { role: () => 'x' })).toThrow(/registry/);
    expect(() => enforceContract(registry, { role: () => 'x', spend: 'no' } as never)).toThrow(/spend/);
    expect(() => spendBudget(registry, { approval: 'yes' } as never)).toThrow(/approval must be a function/);
  });

  it('errorHandler answers a ContractError thrown further down with its status and headers', async () => {
    const app = express5();
    app.get('/boom', () => {
      throw new ContractError('budget_exhausted', 'spent', { headers: { 'retry-after': '7' } });
    });
    app.use(errorHandler());
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/boom`);
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('7');
      expect(await res.json()).toEqual({ error: 'budget_exhausted', message: 'spent' });
    } finally {
      server.close();
    }
  });
});
