import type { Context, Middleware } from 'koa';
import {
  checkGuardOptions,
  denial,
  type GuardOptions,
  hasOutputSchema,
  isJsonBody,
  readAction,
} from './adapter.js';
import { isContractError } from './errors.js';
import type { Registry } from './registry.js';

export type { GuardOptions } from './adapter.js';

function respond(ctx: Context, answer: ReturnType<typeof denial>): void {
  ctx.status = answer.status;
  ctx.set(answer.headers);
  ctx.body = answer.body;
}

/**
 * Koa middleware that guards a tool-invocation route with a role contract. It reads the role, the tool,
 * the input and the principal from the context, checks them, puts the verdict on
 * `ctx.state.amas.contracts`, and answers 400, 403, 429 with `Retry-After`, or 503 itself; only an
 * allowed call runs the rest of the chain. Afterwards a 2xx answer is checked against the tool's output
 * schema and replaced by 502 `output_invalid` when it does not match (or is not JSON while the tool has
 * an output schema). Needs a JSON body parser in front (for `ctx.request.body`).
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import Router from '@koa/router';
 * import { createRegistry, predefinedRoles } from '@amas/contracts';
 * import { enforceContract } from '@amas/contracts/koa';
 *
 * const registry = createRegistry({ contracts: predefinedRoles() });
 * const router = new Router();
 * router.post('/tools/:tool', enforceContract(registry, {
 *   role: (ctx) => ctx.state.amas?.auth?.claims.agent_role,
 * }), (ctx) => { ctx.body = runTool(ctx.params.tool, ctx.request.body); });
 * ```
 */
export function enforceContract(registry: Registry, options: GuardOptions<Context>): Middleware {
  checkGuardOptions('enforceContract', registry, options);
  const o = Object.freeze({ ...options });
  const defaults = {
    tool: (ctx: Context) => (ctx as Context & { params?: Record<string, string> }).params?.tool,
    input: (ctx: Context) => (ctx.request as { body?: unknown }).body,
    principal: (ctx: Context) => ctx.state?.amas?.auth?.subject,
  };
  return async (ctx, next) => {
    const verdict = await registry.check(readAction(ctx, o, defaults));
    ctx.state.amas = { ...ctx.state.amas, contracts: verdict };
    if (!verdict.allowed) return respond(ctx, denial(verdict));
    await next();
    if (o.validateOutput === false || ctx.status < 200 || ctx.status >= 300) return;
    const { role, tool } = verdict;
    if (!isJsonBody(ctx.body)) {
      if (hasOutputSchema(registry, role, tool)) {
        respond(
          ctx,
          denial({ allowed: false, code: 'output_invalid', message: 'the output is not JSON', role, tool }),
        );
      }
      return;
    }
    const v = registry.checkOutput({ role, tool, output: ctx.body });
    ctx.state.amas.contractsOutput = v;
    if (!v.allowed) respond(ctx, denial(v));
  };
}

/**
 * Koa middleware that answers a {@link ContractError} thrown further down with its status, headers and
 * `{ error, message }` body, and rethrows every other error unchanged.
 *
 * @example
 * ```ts
 * import { errorHandler } from '@amas/contracts/koa';
 * app.use(errorHandler());
 * ```
 */
export function errorHandler(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!isContractError(err)) throw err;
      ctx.status = err.status;
      ctx.set(err.headers);
      ctx.body = err.toJSON();
    }
  };
}
