import type { Context, Middleware, Next } from 'koa';
import {
  type ApprovalRoutesOptions,
  handleApprovalRoute,
  isApprovalRoute,
  isJsonContentType,
  readIdentity,
} from './approval-routes.js';
import { isOpaError } from './errors.js';
import { createGuard, type GuardOptions, toPrincipal } from './guard.js';
import { readJsonBody } from './read-body.js';
import { APPROVAL_HEADER } from './tool-access.js';
import type { Authorization, HttpAnswer } from './types.js';

declare global {
  /** Request state shared by the AMAS packages, each under its own key. */
  interface AmasRequestState {
    /** The authorization that let the request through, set by `authorize()` of `@amas/opa`. */
    opa?: Authorization;
  }
}

declare module 'koa' {
  interface DefaultState {
    /** Request state of the AMAS packages; `@amas/opa` sets `amas.opa`. */
    amas?: AmasRequestState;
  }
}

/**
 * Options of the Koa {@link authorize} guard.
 *
 * @example
 * ```ts
 * const options: AuthorizeOptions = { enforcer, path: 'httpapi/authz', input: (ctx) => ({ method: ctx.method, path: ctx.path }) };
 * ```
 */
export type AuthorizeOptions = GuardOptions<Context>;

const send = (ctx: Context, answer: HttpAnswer) => {
  ctx.status = answer.status;
  ctx.set(answer.headers as Record<string, string>);
  ctx.body = answer.body;
};

/**
 * Koa guard: asks the policy and answers 403 (deny), 503 with `Retry-After` (OPA unavailable), or 202
 * with the approval id and status URL (escalate). On allow, puts the {@link Authorization} on
 * `ctx.state.amas.opa` and calls `next()`. A client retries an escalated call with the
 * `amas-approval-id` header.
 *
 * @example
 * ```ts
 * router.post('/tools/:tool', authenticate(verifier), bodyParser(),
 *   authorize({ enforcer, toolAccess: (ctx) => ({ agentRole: 'code_reviewer', toolName: ctx.params.tool, input: ctx.request.body }) }),
 *   runTool);
 * ```
 */
export function authorize(options: AuthorizeOptions): Middleware {
  const guard = createGuard<Context>(options, {
    principal: (ctx) => toPrincipal((ctx.state.amas as { auth?: unknown } | undefined)?.auth),
    approvalId: (ctx) => {
      const v = ctx.headers[APPROVAL_HEADER];
      return typeof v === 'string' ? v : undefined;
    },
  });
  return async (ctx: Context, next: Next) => {
    const { authorization, answer } = await guard(ctx);
    if (answer) return send(ctx, answer);
    ctx.state.amas ??= {};
    ctx.state.amas.opa = authorization;
    await next();
  };
}

/**
 * Options of the Koa {@link approvalRoutes}: where they are mounted, plus the common options.
 *
 * @example
 * ```ts
 * const options: KoaApprovalRoutesOptions = { prefix: '/admin/approvals', approvals: enforcer.approvals, identity: (ctx) => toPrincipal(ctx.state.amas?.auth) };
 * ```
 */
export interface KoaApprovalRoutesOptions extends ApprovalRoutesOptions<Context> {
  /** Path prefix the routes answer under. Default `/approvals`. */
  readonly prefix?: string;
}

/**
 * Approval routes under `prefix`: `GET /` (pending requests the caller may decide), `GET /:id`
 * (status), `POST /:id/approve`, `POST /:id/deny` (body `{ "reason": "..." }`;
 * `Content-Type: application/json` is required, any other type is a 415, so a cross-site form cannot
 * approve). They never authenticate: put your authentication before them and give `identity`.
 *
 * @example
 * ```ts
 * app.use(authenticate(verifier));
 * app.use(approvalRoutes({ approvals: enforcer.approvals, identity: (ctx) => toPrincipal(ctx.state.amas?.auth) }));
 * ```
 */
export function approvalRoutes(options: KoaApprovalRoutesOptions): Middleware {
  if (typeof options?.identity !== 'function' || typeof options?.approvals?.consume !== 'function') {
    throw new TypeError(
      'approvalRoutes: options "approvals" (enforcer.approvals) and "identity" (ctx => principal) are required',
    );
  }
  const prefix = (options.prefix ?? '/approvals').replace(/\/+$/, '');
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== prefix && !ctx.path.startsWith(`${prefix}/`)) return next();
    const path = ctx.path.slice(prefix.length) || '/';
    if (!isApprovalRoute(path)) return next();
    try {
      const parsed = (ctx.request as { body?: unknown }).body;
      const contentType = ctx.headers['content-type'];
      // Only a JSON request is read: any other is refused (415) without touching its body.
      const body =
        ctx.method === 'POST' && isJsonContentType(contentType)
          ? parsed !== undefined
            ? parsed
            : await readJsonBody(ctx.req)
          : undefined;
      const answer = await handleApprovalRoute(options.approvals, {
        method: ctx.method,
        path,
        contentType,
        body,
        identity: await readIdentity(options.identity, ctx),
        statusUrl: (id) => `${prefix}/${encodeURIComponent(id)}`,
      });
      if (!answer) return next();
      send(ctx, answer);
    } catch (err) {
      if (!isOpaError(err)) throw err;
      send(ctx, { status: err.status, headers: { ...err.headers }, body: err.toJSON() });
    }
  };
}

/**
 * Koa middleware that answers an `OpaError` thrown further down with its status, headers and
 * `{ error, message }` body, and rethrows every other error unchanged.
 *
 * @example
 * ```ts
 * import { errorHandler } from '@amas/opa/koa';
 * app.use(errorHandler());
 * ```
 */
export function errorHandler(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!isOpaError(err)) throw err;
      ctx.status = err.status;
      ctx.set(err.headers);
      ctx.body = err.toJSON();
    }
  };
}

export { toPrincipal };
