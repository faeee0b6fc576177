import * as z from 'zod';
import { ContractError } from './errors.js';
import type { Action, DeniedVerdict, GuardOptions, OutputVerdict, Registry, SpendOptions } from './types.js';
import { verdictError } from './verdict-error.js';

const PENDING = Symbol.for('@amas/contracts/pending-action');

/** Keeps the action a `spend: false` guard checked, for `spendBudget()` later on the same request. */
export function keepAction(holder: object, action: Action): void {
  Object.defineProperty(holder, PENDING, { value: action, configurable: true });
}

/** Takes the action a `spend: false` guard kept (once). */
export function takeAction(holder: object): Action | undefined {
  const action = (holder as Record<symbol, Action | undefined>)[PENDING];
  if (action !== undefined) delete (holder as Record<symbol, unknown>)[PENDING];
  return action;
}

/** The answer when `spendBudget()` finds no action: a wiring mistake, and the call must not run. */
export function missingGuard(): ReturnType<typeof denial> {
  return {
    status: 500,
    headers: {},
    body: {
      error: 'config_invalid',
      message: 'spendBudget() needs enforceContract({ spend: false }) before it',
    },
  };
}

/** Adds a verified approval to the kept action; a throwing reader adds none. */
export function withApproval<Req>(action: Action, req: Req, o: SpendOptions<Req>): Action {
  try {
    const approval = o.approval?.(req);
    return approval === undefined ? action : { ...action, approval };
  } catch {
    return action;
  }
}

const fn = (name: string) =>
  z.custom<(...a: never[]) => unknown>((v) => typeof v === 'function', `${name} must be a function`);

const optionsSchema = z.strictObject({
  role: fn('role'),
  tool: fn('tool').optional(),
  input: fn('input').optional(),
  principal: fn('principal').optional(),
  session: fn('session').optional(),
  approval: fn('approval').optional(),
  validateOutput: z.boolean('validateOutput must be a boolean').optional(),
  spend: z.boolean('spend must be a boolean').optional(),
});

const spendSchema = z.strictObject({
  approval: fn('approval').optional(),
  validateOutput: z.boolean('validateOutput must be a boolean').optional(),
});

/** Validates adapter options once, at the factory. */
export function checkGuardOptions(name: string, registry: Registry, options: unknown): void {
  if (typeof (registry as Partial<Registry> | null)?.check !== 'function') {
    throw new ContractError(
      'config_invalid',
      `${name}: the first argument must be a registry from createRegistry()`,
    );
  }
  const r = (name === 'spendBudget' ? spendSchema : optionsSchema).safeParse(options);
  if (!r.success) throw new ContractError('config_invalid', `${name}: ${z.prettifyError(r.error)}`);
}

/** Where `@amas/oidc` puts the verified principal; read as data, without depending on that package. */
export type WithAuth = { amas?: { auth?: { subject?: unknown; issuer?: unknown } } };

/**
 * The default budget principal: the verified subject `@amas/oidc` put on the request, qualified by its
 * issuer (`["https://login.example.com/","alice"]`) whenever it has one, so that the same `sub` of two
 * issuers never shares a budget. A subject with an issuer that is not a non-empty string gives no
 * principal: budgets counted per principal then deny the call (`action_invalid`).
 */
export function principalOf(state: WithAuth | undefined): string | undefined {
  const auth = state?.amas?.auth;
  const sub = auth?.subject;
  if (typeof sub !== 'string' || sub === '') return undefined;
  const iss = auth?.issuer;
  if (iss === undefined) return sub;
  return typeof iss === 'string' && iss !== '' ? JSON.stringify([iss, sub]) : undefined;
}

/** Builds the action from a request; a throwing reader gives an action that the check denies. */
export function readAction<Req>(
  req: Req,
  o: GuardOptions<Req>,
  defaults: { tool: (req: Req) => unknown; input: (req: Req) => unknown; principal: (req: Req) => unknown },
): Action {
  const s = (v: unknown) => (typeof v === 'string' ? v : undefined);
  try {
    const principal = s((o.principal ?? defaults.principal)(req));
    const session = o.session ? s(o.session(req)) : undefined;
    const approval = o.approval?.(req);
    return {
      role: s(o.role(req)) ?? '',
      tool: s((o.tool ?? defaults.tool)(req)) ?? '',
      input: (o.input ?? defaults.input)(req),
      ...(principal !== undefined ? { principal } : {}),
      ...(session !== undefined ? { session } : {}),
      ...(approval !== undefined ? { approval } : {}),
    };
  } catch {
    return { role: '', tool: '', input: undefined };
  }
}

/** The HTTP answer of a denied verdict: status, headers and a body without input values. */
export function denial(verdict: DeniedVerdict | Extract<OutputVerdict, { allowed: false }>): {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
} {
  const err = verdictError(verdict);
  const headers: Record<string, string> = { ...err.headers };
  const body: Record<string, unknown> = { ...err.toJSON() };
  if (verdict.errors) body.errors = verdict.errors;
  if ('budget' in verdict && verdict.budget) body.budget = verdict.budget;
  if ('approval' in verdict && verdict.approval) body.approval = verdict.approval;
  return { status: err.status, headers, body };
}

/** True when the role's tool has an output schema, so an answer that cannot be checked must not leave. */
export function hasOutputSchema(registry: Registry, role: string, tool: string): boolean {
  const c = registry.contract(role);
  return c !== undefined && Object.hasOwn(c.tools, tool) && c.tools[tool]!.output !== undefined;
}

/** A body an adapter can check against an output schema: parsed JSON, not bytes, text or a stream. */
export function isJsonBody(body: unknown): boolean {
  if (typeof body !== 'object' || body === null) return false;
  if (Array.isArray(body)) return true;
  const proto = Object.getPrototypeOf(body);
  return proto === Object.prototype || proto === null;
}
