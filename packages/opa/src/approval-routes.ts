import { errorAnswer } from './answers.js';
import type { Approvals } from './approvals.js';
import { isOpaError, OpaError } from './errors.js';
import { isValidPrincipal } from './principal.js';
import type { HttpAnswer, Principal } from './types.js';

/**
 * A framework-free approval route request: method, path below the mount point, parsed JSON body,
 * the authenticated identity (from your own authentication) and how to build a status URL.
 *
 * @example
 * ```ts
 * await handleApprovalRoute(approvals, {
 *   method: 'POST',
 *   path: `/${id}/approve`,
 *   contentType: 'application/json',
 *   body: { reason: 'ok' },
 *   identity,
 *   statusUrl: (i) => `/approvals/${i}`,
 * });
 * ```
 */
export interface ApprovalRouteRequest {
  readonly method: string;
  readonly path: string;
  /**
   * The request's `Content-Type` header. `approve` and `deny` answer 415 unless it is
   * `application/json` (parameters such as `charset` allowed): a cross-site form or a body-less POST
   * cannot send that type without a CORS preflight, so a cookie-authenticated approver cannot be made
   * to approve from another site.
   */
  readonly contentType: string | undefined;
  readonly body: unknown;
  readonly identity: Principal | undefined;
  readonly statusUrl: (id: string) => string;
}

/**
 * Options of the approval routes adapters (`approvalRoutes` in `@amas/opa/express` and `/koa`).
 *
 * @example
 * ```ts
 * // @amas/oidc puts its principal on req.amas.auth (Koa: ctx.state.amas.auth); toPrincipal keeps its issuer.
 * app.use('/approvals', authenticate(verifier), approvalRoutes({ approvals: enforcer.approvals, identity: (req) => toPrincipal(req.amas?.auth) }));
 * ```
 */
export interface ApprovalRoutesOptions<Req> {
  /** The workflow to serve, usually `enforcer.approvals`. */
  readonly approvals: Approvals;
  /**
   * Who is calling, from your authentication; `undefined` answers 401. Required: the routes never
   * authenticate. With `@amas/oidc`, `toPrincipal(req.amas?.auth)` (Koa: `ctx.state.amas?.auth`):
   * it keeps the issuer, so that `alice` of one issuer is not taken for `alice` of another. An
   * identity whose `iss` is present but not a non-empty string of at most 2,048 characters answers 401.
   */
  readonly identity: (req: Req) => Principal | undefined | Promise<Principal | undefined>;
}

/**
 * Runs the caller's `identity` function for the approval routes. One that throws (a request its
 * authentication cannot read) counts as no identity, so the routes answer 401 instead of passing a
 * stack trace to the framework's error page; an {@link OpaError} it throws is kept.
 *
 * @example
 * ```ts
 * const identity = await readIdentity(options.identity, req);
 * ```
 */
export async function readIdentity<Req>(
  identity: ApprovalRoutesOptions<Req>['identity'],
  req: Req,
): Promise<Principal | undefined> {
  try {
    return await identity(req);
  } catch (err) {
    if (isOpaError(err)) throw err;
    return undefined;
  }
}

const ROUTE = /^\/([A-Za-z0-9_-]{1,128})(?:\/(approve|deny))?\/?$/;

/**
 * Whether a path below the mount point is one of the approval routes. Adapters check it before
 * reading a body, so that requests for other routes below the mount point keep theirs.
 *
 * @example
 * ```ts
 * if (!isApprovalRoute(req.path)) return next();
 * ```
 */
export function isApprovalRoute(path: string): boolean {
  return path === '' || path === '/' || ROUTE.test(path);
}

/**
 * Whether a `Content-Type` header value is `application/json`, with or without parameters
 * (`application/json; charset=utf-8`), in any letter case. The approval routes' state changes
 * (approve, deny) accept only this type; adapters also use it to decide whether to read a body.
 *
 * @example
 * ```ts
 * isJsonContentType('application/json; charset=utf-8'); // true
 * isJsonContentType('text/plain'); // false: a cross-site form can send it without a preflight
 * ```
 */
export function isJsonContentType(value: string | undefined): boolean {
  if (typeof value !== 'string') return false;
  const semi = value.indexOf(';');
  return (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpAnswer => ({
  status,
  headers,
  body,
});

/**
 * Serves the approval routes below a mount point: `GET /` (pending requests the caller may decide),
 * `GET /:id` (status, for the requester or an eligible approver), `POST /:id/approve` and
 * `POST /:id/deny` (body `{ "reason": "..." }`, sent as `Content-Type: application/json`: any other
 * type, or none, is a 415). Answers `undefined` for paths it does not serve. Requests without an
 * identity (or with a malformed `iss`) get 401; a request the caller may not see (someone else's,
 * where the requester is the pair `iss`, `sub`) is a 404.
 *
 * @example
 * ```ts
 * const answer = await handleApprovalRoute(enforcer.approvals, { method, path, body, identity, statusUrl });
 * if (answer) reply(answer.status, answer.headers, answer.body);
 * ```
 */
export async function handleApprovalRoute(
  approvals: Approvals,
  req: ApprovalRouteRequest,
): Promise<HttpAnswer | undefined> {
  const path = req.path === '' ? '/' : req.path;
  const match = path === '/' ? undefined : ROUTE.exec(path);
  if (path !== '/' && !match) return undefined;
  const action = match?.[2];
  const allowed = action ? ['POST'] : ['GET', 'HEAD'];
  if (!allowed.includes(req.method)) {
    return json(
      405,
      { error: 'method_not_allowed', message: `use ${allowed[0]}` },
      { allow: allowed.join(', ') },
    );
  }
  const identity = req.identity;
  if (!isValidPrincipal(identity)) {
    return errorAnswer(
      new OpaError('unauthenticated', 'approval routes need an authenticated caller', {
        headers: { 'www-authenticate': 'Bearer' },
      }),
    );
  }
  if (action && !isJsonContentType(req.contentType)) {
    return errorAnswer(
      new OpaError(
        'unsupported_media_type',
        `${action} needs Content-Type: application/json (a JSON body, for example {"reason": "..."}, or none)`,
        { headers: { accept: 'application/json' } },
      ),
    );
  }
  try {
    if (!match) {
      const pending = await approvals.listPending(identity);
      return json(200, { approvals: pending.map((r) => approvals.view(r, req.statusUrl(r.id))) });
    }
    const id = match[1] as string;
    if (!action) {
      const record = await approvals.get(id);
      if (!record || !approvals.canView(record, identity))
        throw new OpaError('approval_not_found', 'no such approval request');
      return json(200, approvals.view(record, req.statusUrl(id)));
    }
    const body = req.body;
    const reason =
      typeof body === 'object' && body !== null && 'reason' in body
        ? (body as { reason: unknown }).reason
        : undefined;
    if (reason !== undefined && typeof reason !== 'string')
      throw new OpaError('input_invalid', 'reason must be a string');
    const record = await approvals.get(id);
    // Someone who may not even see the request learns nothing about it.
    if (!record || !approvals.canView(record, identity))
      throw new OpaError('approval_not_found', 'no such approval request');
    const updated =
      action === 'approve'
        ? await approvals.approve(id, identity, reason)
        : await approvals.deny(id, identity, reason);
    return json(200, approvals.view(updated, req.statusUrl(id)));
  } catch (err) {
    return errorAnswer(err);
  }
}
