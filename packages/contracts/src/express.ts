import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
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
  namespace Express {
    interface Request {
      /** Request state of the AMAS packages; `@amas/contracts` sets `amas.contracts`. */
      amas?: AmasRequestState;
    }
  }
  /** Request state shared by the AMAS packages, each under its own key. */
  interface AmasRequestState {
    /** The verdict of the contract check, set by `enforceContract()` and `spendBudget()` of `@amas/contracts`. */
    contracts?: Verdict;
    /** The verdict of the output check of `@amas/contracts`, once the handler answered. */
    contractsOutput?: OutputVerdict;
  }
}

function send(res: Response, answer: ReturnType<typeof denial>): void {
  res.status(answer.status).set(answer.headers).json(answer.body);
}

/**
 * Express middleware that guards a tool-invocation route with a role contract. It reads the role, the tool,
 * the input and the principal from the request, checks them, puts the verdict on `req.amas.contracts`,
 * and answers 400 (invalid input), 403 (role or tool not allowed, or approval required), 429 with
 * `Retry-After` (budget spent) or 503 (budget store down) itself; only an allowed call reaches the
 * handler. A 2xx JSON answer (`res.json`, `res.send(object)`) is checked against the tool's output
 * schema first and replaced by 502 `output_invalid` when it does not match; with an output schema, a
 * 2xx answer that is not JSON is refused the same way.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createRegistry, predefinedRoles } from '@amas/contracts';
 * import { enforceContract } from '@amas/contracts/express';
 *
 * const registry = createRegistry({ contracts: predefinedRoles() });
 * const app = express();
 * app.post('/tools/:tool', express.json(), enforceContract(registry, {
 *   role: (req) => req.amas?.auth?.claims.agent_role,
 * }), (req, res) => res.json(runTool(req.params.tool, req.body)));
 * ```
 */
export function enforceContract(registry: Registry, options: GuardOptions<Request>): RequestHandler {
  checkGuardOptions('enforceContract', registry, options);
  const o = Object.freeze({ ...options });
  const defaults = {
    tool: (req: Request) => req.params?.tool,
    input: (req: Request) => req.body,
    principal: (req: Request) => principalOf(req as unknown as WithAuth),
  };
  const spend = o.spend !== false;
  return (req, res, next) => {
    const action = readAction(req, o, defaults);
    void registry.check(action, { spend }).then((verdict) => {
      req.amas = { ...req.amas, contracts: verdict };
      if (!spend && (verdict.allowed || verdict.code === 'approval_required')) {
        keepAction(req, action);
        return next();
      }
      if (!verdict.allowed) return send(res, denial(verdict));
      if (o.validateOutput !== false) guardOutput(registry, req, res, verdict.role, verdict.tool);
      next();
    }, next);
  };
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
 * app.post('/v1/agents/:role/tools/:tool', authenticate(verifier), express.json(),
 *   enforceContract(registry, { role: (req) => roleOf(req), spend: false }), // the verified principal's role
 *   authorize(enforcer),
 *   spendBudget(registry, { approval: (req) => req.amas?.opa?.approval }),
 *   runTool);
 * ```
 */
export function spendBudget(registry: Registry, options: SpendOptions<Request> = {}): RequestHandler {
  checkGuardOptions('spendBudget', registry, options);
  const o = Object.freeze({ ...options });
  return (req, res, next) => {
    const kept = takeAction(req);
    if (!kept) return send(res, missingGuard());
    void registry.check(withApproval(kept, req, o)).then((verdict) => {
      req.amas = { ...req.amas, contracts: verdict };
      if (!verdict.allowed) return send(res, denial(verdict));
      if (o.validateOutput !== false) guardOutput(registry, req, res, verdict.role, verdict.tool);
      next();
    }, next);
  };
}

function guardOutput(registry: Registry, req: Request, res: Response, role: string, tool: string): void {
  const json = res.json.bind(res);
  const sendRaw = res.send.bind(res);
  const strict = hasOutputSchema(registry, role, tool);
  let inJson = false;
  const ok = () => res.statusCode >= 200 && res.statusCode < 300;
  res.json = (body: unknown) => {
    if (ok()) {
      const v = registry.checkOutput({ role, tool, output: body });
      req.amas = { ...req.amas, contractsOutput: v };
      if (!v.allowed) {
        const answer = denial(v);
        res.status(answer.status).set(answer.headers);
        body = answer.body;
      }
    }
    inJson = true;
    try {
      return json(body);
    } finally {
      inJson = false;
    }
  };
  res.send = (body: unknown) => {
    if (inJson || !strict || !ok() || isJsonBody(body)) return sendRaw(body);
    const answer = denial({
      allowed: false,
      code: 'output_invalid',
      message: 'the output is not JSON',
      role,
      tool,
    });
    res.status(answer.status).set(answer.headers);
    return json(answer.body);
  };
}

/**
 * Express error middleware that answers a `ContractError` with its status, headers and
 * `{ error, message }` body, and passes every other error on unchanged.
 *
 * @example
 * ```ts
 * import { errorHandler } from '@amas/contracts/express';
 * app.use(errorHandler());
 * ```
 */
export function errorHandler(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!isContractError(err) || res.headersSent) return next(err);
    res.status(err.status).set(err.headers).json(err.toJSON());
  };
}
