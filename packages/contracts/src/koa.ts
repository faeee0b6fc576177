import type { Context, Middleware } from 'koa';
import {
  checkGuardOptions,
  denial,
  hasOutputSchema,
  isJsonBody,
  keepAction,
  missingGuard,
  principalOf,
  readAction,
  takeAction,
  type WithAuth,
  withApproval,
} from './adapter.js';
import { isContractError } from './errors.js';
import type { GuardOptions, OutputVerdict, Registry, SpendOptions, Verdict } from './types.js';

export type { GuardOptions, SpendOptions } from './types.js';

declare global {
  /** Request state shared by the AMAS packages, each under its own key. */
  interface AmasRequestState {
    /** The verdict of the contract check, set by `enforceContract()` and `spendBudget()` of `@amas/contracts`. */
    contracts?: Verdict;
    /** The verdict of the output check of `@amas/contracts`, once the handler answered. */
    contractsOutput?: OutputVerdict;
  }
}

declare module 'koa' {
  interface DefaultState {
    /** Request state of the AMAS packages; `@amas/contracts` sets `amas.contracts`. */
    amas?: AmasRequestState;
  }
}

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
    principal: (ctx: Context) => principalOf(ctx.state as WithAuth),
  };
  const spend = o.spend !== false;
  return async (ctx, next) => {
    const action = readAction(ctx, o, defaults);
    const verdict = await registry.check(action, { spend });
    ctx.state.amas = { ...ctx.state.amas, contracts: verdict };
    if (!spend && (verdict.allowed || verdict.code === 'approval_required')) {
      keepAction(ctx, action);
      return next();
    }
    if (!verdict.allowed) return respond(ctx, denial(verdict));
    await next();
    if (o.validateOutput !== false) checkAnswer(registry, ctx, verdict.role, verdict.tool);
  };
}

/** Checks a 2xx answer against the tool's output schema, replacing it with 502 when it does not match. */
function checkAnswer(registry: Registry, ctx: Context, role: string, tool: string): void {
  if (ctx.status < 200 || ctx.status >= 300) return;
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
  ctx.state.amas = { ...ctx.state.amas, contractsOutput: v };
  if (!v.allowed) respond(ctx, denial(v));
}

/**
 * The second half of `enforceContract(registry, { spend: false })`, placed after your policy step (for
 * example `@amas/opa`'s guard): checks the same action again, with the approval your policy step
 * verified, and spends its budgets atomically. Answers 403 `approval_required` when the tool still needs
 * an approval, 429 when another caller took the last room meanwhile, 503 when the store is down, and 500
 * `config_invalid` when no `spend: false` guard ran before it. Then checks the output like the guard.
 *
 * @example
 * ```ts
 * router.post('/v1/agents/:role/tools/:tool',
 *   enforceContract(registry, { role: (ctx) => roleOf(ctx), spend: false }), // the verified principal's role
 *   authorize(enforcer),
 *   spendBudget(registry, { approval: (ctx) => ctx.state.amas?.opa?.approval }),
 *   runTool);
 * ```
 */
export function spendBudget(registry: Registry, options: SpendOptions<Context> = {}): Middleware {
  checkGuardOptions('spendBudget', registry, options);
  const o = Object.freeze({ ...options });
  return async (ctx, next) => {
    const kept = takeAction(ctx);
    if (!kept) return respond(ctx, missingGuard());
    const verdict = await registry.check(withApproval(kept, ctx, o));
    ctx.state.amas = { ...ctx.state.amas, contracts: verdict };
    if (!verdict.allowed) return respond(ctx, denial(verdict));
    await next();
    if (o.validateOutput !== false) checkAnswer(registry, ctx, verdict.role, verdict.tool);
  };
}

/**
 * Koa middleware that answers a `ContractError` thrown further down with its status, headers and
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
