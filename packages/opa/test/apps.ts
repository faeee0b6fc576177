import type { Server } from 'node:http';
import Router from '@koa/router';
import express, { type Request } from 'express';
import express4 from 'express4';
import Koa, { type Context } from 'koa';
import Koa2 from 'koa2';
import type { Enforcer } from '../src/enforcer.js';
import { approvalRoutes as expressApprovals, authorize as expressAuthorize } from '../src/express.js';
import { toPrincipal } from '../src/guard.js';
import { approvalRoutes as koaApprovals, authorize as koaAuthorize } from '../src/koa.js';
import { readJsonBody } from '../src/read-body.js';

// A stand-in for @amas/oidc's authenticate(): "Authorization: Bearer <sub>|<scope>,<scope>" puts
// { subject, scopes } on amas.auth, the shape @amas/oidc uses, plus `issuer` when the request has a
// "test-issuer" header (several issuers). The examples use the real one.
function principalFrom(header: string | undefined, issuer: string | string[] | undefined) {
  const m = /^Bearer ([^|]+)\|?(.*)$/.exec(header ?? '');
  if (!m) return undefined;
  return {
    subject: m[1],
    ...(typeof issuer === 'string' ? { issuer } : {}),
    scopes: (m[2] ?? '').split(',').filter(Boolean),
  };
}

export interface TestApp {
  url: string;
  close(): Promise<void>;
}

/** Listens on a free port of 127.0.0.1; `close()` also drops open connections. */
export const listen = (server: Server): Promise<TestApp> =>
  new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });

export type Framework = 'express5' | 'express4' | 'koa3' | 'koa2';

export function startApp(framework: Framework, enforcer: Enforcer): Promise<TestApp> {
  if (framework === 'express5' || framework === 'express4') {
    const e = (framework === 'express5' ? express : express4) as unknown as typeof express;
    const app = e();
    app.use((req, _res, next) => {
      const p = principalFrom(req.headers.authorization, req.headers['test-issuer']);
      if (p) req.amas = { ...req.amas, auth: p } as typeof req.amas;
      next();
    });
    app.post(
      '/tools/:role/:tool',
      e.json(),
      expressAuthorize({
        enforcer,
        toolAccess: (req: Request) => {
          if (req.params.tool === 'crash') throw new Error('mapper bug with a secret: hunter2');
          return { agentRole: String(req.params.role), toolName: String(req.params.tool), input: req.body };
        },
        statusUrl: (id) => `/approvals/${id}`,
      }),
      (req, res) => {
        res.json({
          ran: true,
          approval: req.amas?.opa?.outcome === 'allow' ? (req.amas.opa.approval?.id ?? null) : null,
        });
      },
    );
    app.use(
      '/approvals',
      (req, res, next) =>
        req.amas && (req.amas as { auth?: unknown }).auth
          ? next()
          : res.status(401).json({ error: 'unauthenticated' }),
      expressApprovals({
        approvals: enforcer.approvals,
        identity: (req) => toPrincipal((req.amas as { auth?: unknown }).auth),
      }),
    );
    return listen(app.listen(0, '127.0.0.1'));
  }
  const K = (framework === 'koa3' ? Koa : Koa2) as unknown as typeof Koa;
  const app = new K();
  const router = new Router();
  app.use(async (ctx: Context, next) => {
    const p = principalFrom(ctx.headers.authorization, ctx.headers['test-issuer']);
    if (p) ctx.state.amas = { ...ctx.state.amas, auth: p } as typeof ctx.state.amas;
    await next();
  });
  app.use(async (ctx: Context, next) => {
    if (ctx.path.startsWith('/approvals') && !(ctx.state.amas as { auth?: unknown } | undefined)?.auth) {
      ctx.status = 401;
      ctx.body = { error: 'unauthenticated' };
      return;
    }
    await next();
  });
  app.use(
    koaApprovals({
      approvals: enforcer.approvals,
      identity: (ctx) => toPrincipal((ctx.state.amas as { auth?: unknown }).auth),
    }),
  );
  router.post(
    '/tools/:role/:tool',
    async (ctx, next) => {
      (ctx.request as { body?: unknown }).body = await readJsonBody(ctx.req);
      await next();
    },
    koaAuthorize({
      enforcer,
      toolAccess: (ctx) => {
        if (ctx.params.tool === 'crash') throw new Error('mapper bug with a secret: hunter2');
        return {
          agentRole: String(ctx.params.role),
          toolName: String(ctx.params.tool),
          input: (ctx.request as { body?: Record<string, unknown> }).body,
        };
      },
    }),
    (ctx) => {
      const opa = ctx.state.amas?.opa;
      ctx.body = { ran: true, approval: opa?.outcome === 'allow' ? (opa.approval?.id ?? null) : null };
    },
  );
  app.use(router.routes());
  return listen(app.listen(0, '127.0.0.1'));
}

/** An HTTP answer of a test app: status, headers, the raw text, and the body parsed as JSON (or `{}`). */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: Record<string, unknown>;
}

/**
 * Calls a test app: `auth` becomes the Authorization header; a `body` string is sent as it is and
 * anything else as JSON, with `content-type: application/json` either way; `extra` adds headers.
 */
export async function call(
  app: { url: string },
  method: string,
  path: string,
  auth?: string,
  body?: unknown,
  extra: Record<string, string> = {},
): Promise<Answer> {
  const r = await fetch(`${app.url}${path}`, {
    method,
    headers: {
      ...(auth ? { authorization: auth } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...extra,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    // not JSON: the assertions look at `text`
  }
  return { status: r.status, headers: r.headers, text, body: parsed };
}
