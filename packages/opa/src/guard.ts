import * as z from 'zod';
import { authorizationAnswer, errorAnswer } from './answers.js';
import type { Enforcer } from './enforcer.js';
import { parseOptions } from './options.js';
import type { Authorization, Fallback, HttpAnswer, Principal, ToolAccessRequest } from './types.js';

/**
 * Options of the authorize guards (`authorize` in `@amas/opa/express` and `/koa`). Give either
 * `toolAccess` (the shipped tool-access policy) or `path` and `input` (any policy).
 *
 * @example
 * ```ts
 * authorize({
 *   enforcer,
 *   toolAccess: (req) => ({ agentRole: req.params.role, toolName: req.params.tool, input: req.body }),
 * });
 * ```
 */
export interface GuardOptions<Req> {
  readonly enforcer: Enforcer;
  /** Maps the request and principal to a tool call for the shipped policy. */
  readonly toolAccess?: (
    req: Req,
    principal: Principal | undefined,
  ) => Omit<ToolAccessRequest, 'subject'> | Promise<Omit<ToolAccessRequest, 'subject'>>;
  /** A Data API path, with `input`, for any other policy. */
  readonly path?: string;
  /** Maps the request and principal to the policy input (with `path`). */
  readonly input?: (req: Req, principal: Principal | undefined) => unknown;
  /**
   * Who calls. Default: the principal `@amas/oidc` put on the request (`amas.auth`), read by
   * {@link toPrincipal} (subject, issuer, scopes). Keep the issuer (`iss`) when several issuers can
   * authenticate callers: approvals are bound to the pair (`iss`, `sub`).
   */
  readonly principal?: (req: Req) => Principal | undefined;
  /** Where the client polls an approval. Default `/approvals/<id>`. */
  readonly statusUrl?: (id: string, req: Req) => string;
  /** What to do when OPA is unavailable. Default `deny`; `allow` only by explicit choice. */
  readonly fallback?: Fallback;
}

/**
 * What a guard decided: allowed (no answer), or the answer to send.
 *
 * @example
 * ```ts
 * const { answer } = await guard(req);
 * if (answer) reply(answer.status, answer.headers, answer.body);
 * ```
 */
export interface GuardResult {
  readonly authorization?: Authorization;
  readonly answer?: HttpAnswer;
}

const fn = (what: string) =>
  z.custom<(...a: never[]) => unknown>((v) => typeof v === 'function', {
    message: `must be a function (${what})`,
  });

const guardSchema = z
  .object({
    enforcer: z.custom<Enforcer>((v) => typeof (v as Enforcer | undefined)?.authorize === 'function', {
      message: 'must be an enforcer from createEnforcer()',
    }),
    toolAccess: fn('request, principal => { agentRole, toolName, input }').optional(),
    path: z.string().optional(),
    input: fn('request, principal => policy input').optional(),
    principal: fn('request => { sub, iss?, scopes }').optional(),
    statusUrl: fn('approval id => URL').optional(),
    fallback: z.enum(['deny', 'allow']).default('deny'),
  })
  .strict()
  .refine((o) => (o.toolAccess !== undefined) !== (o.path !== undefined && o.input !== undefined), {
    message: 'give either "toolAccess", or both "path" and "input"',
    path: ['toolAccess'],
  });

/**
 * Reads the principal `@amas/oidc` leaves on the request state (`{ subject, issuer, scopes }`), or any
 * `{ sub, iss?, scopes }` object, as a {@link Principal}. `sub` comes from `sub` or `subject`, `iss`
 * from `iss` or `issuer`: in each pair the first that is a non-empty string wins, and anything else
 * (a number, `null`, `''`) is ignored. Without a subject there is no principal; without an issuer
 * the principal has no `iss`, and matches only approval requests made without one. An `iss` longer
 * than 2,048 characters is kept, and the approval workflow refuses it (`unauthenticated`, 401).
 *
 * @example
 * ```ts
 * toPrincipal({ subject: 'agent-42', issuer: 'https://idp.example.com/', scopes: ['agents:invoke'] });
 * // { sub: 'agent-42', iss: 'https://idp.example.com/', scopes: ['agents:invoke'] }
 * ```
 */
export function toPrincipal(value: unknown): Principal | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { sub?: unknown; subject?: unknown; iss?: unknown; issuer?: unknown; scopes?: unknown };
  const text = (x: unknown) => (typeof x === 'string' && x !== '' ? x : undefined);
  const sub = typeof v.sub === 'string' ? v.sub : typeof v.subject === 'string' ? v.subject : undefined;
  if (sub === undefined || sub === '') return undefined;
  const iss = text(v.iss) ?? text(v.issuer);
  const scopes = Array.isArray(v.scopes) ? v.scopes.filter((s): s is string => typeof s === 'string') : [];
  return iss === undefined ? { sub, scopes } : { sub, iss, scopes };
}

/**
 * The framework-free core of the authorize guards: reads the principal and the approval id,
 * maps the request to a policy input, calls {@link Enforcer.authorize} and computes the answer.
 * Adapters only read the request and copy the answer. Options are validated here, once.
 *
 * @example
 * ```ts
 * const guard = createGuard<IncomingMessage>({ enforcer, toolAccess: (req) => ({ agentRole: 'admin', toolName: 'read_file' }) }, {
 *   principal: () => undefined,
 *   approvalId: (req) => req.headers['amas-approval-id'] as string | undefined,
 * });
 * ```
 */
export function createGuard<Req>(
  options: GuardOptions<Req>,
  defaults: { principal: (req: Req) => Principal | undefined; approvalId: (req: Req) => string | undefined },
): (req: Req) => Promise<GuardResult> {
  const o = parseOptions(guardSchema, options, 'authorize');
  const principalOf = (o.principal as GuardOptions<Req>['principal']) ?? defaults.principal;
  const statusUrl =
    (o.statusUrl as GuardOptions<Req>['statusUrl']) ??
    ((id: string) => `/approvals/${encodeURIComponent(id)}`);
  const toolAccess = o.toolAccess as GuardOptions<Req>['toolAccess'];
  const input = o.input as GuardOptions<Req>['input'];
  const path = o.path;
  const enforcer = o.enforcer;
  const fallback = o.fallback;

  return async (req) => {
    try {
      const principal = principalOf(req);
      const approvalId = defaults.approvalId(req);
      const common = {
        ...(principal ? { principal } : {}),
        ...(approvalId !== undefined ? { approvalId } : {}),
        fallback,
      };
      const authorization = toolAccess
        ? await enforcer.authorize({ ...common, toolAccess: await toolAccess(req, principal) })
        : await enforcer.authorize({ ...common, path: path as string, input: await input?.(req, principal) });
      if (authorization.allowed) return { authorization };
      return {
        authorization,
        answer: authorizationAnswer(authorization, { statusUrl: (id) => statusUrl(id, req) }),
      };
    } catch (err) {
      return { answer: errorAnswer(err) };
    }
  };
}
