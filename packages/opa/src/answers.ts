import { isOpaError, type OpaErrorCode, OpaErrorStatus } from './errors.js';
import { APPROVAL_HEADER } from './tool-access.js';
import type { Authorization, HttpAnswer } from './types.js';

const MESSAGES: Readonly<Partial<Record<OpaErrorCode, string>>> = Object.freeze({
  policy_denied: 'the policy denies this action',
  policy_undefined: 'the policy has no decision for this action',
  policy_unavailable: 'the policy decision point is unavailable; retry later',
  approval_unavailable: 'the approval store is unavailable; retry later',
  unauthenticated: 'this action needs an approval, and approvals need an authenticated principal',
  approval_not_found: 'no such approval request',
  approval_expired: 'the approval has expired',
  approval_already_used: 'the approval has already been used',
  approval_pending: 'the approval request has not been approved yet',
  approval_denied: 'the approval request was denied',
  approval_mismatch: 'the approval was granted for another action or principal',
  approval_limit:
    'too many approval requests of this principal are pending; wait for a decision, or retry after Retry-After seconds',
});

/**
 * The HTTP answer for an {@link Authorization} that is not an allow: 403 for a denial (or the
 * approval error's own status: 429 with `Retry-After` for `approval_limit`), 503 with `Retry-After`
 * when OPA or the approval store is unavailable, and 202 with the
 * approval id, its status URL (also in `Location`) and how to retry, for an escalation.
 * Causes of unavailability are never put in the body.
 *
 * @example
 * ```ts
 * const a = await enforcer.authorize({ toolAccess, principal });
 * if (!a.allowed) {
 *   const r = authorizationAnswer(a, { statusUrl: (id) => `/approvals/${id}` });
 *   res.writeHead(r.status, { ...r.headers, 'content-type': 'application/json' }).end(JSON.stringify(r.body));
 * }
 * ```
 */
export function authorizationAnswer(
  auth: Authorization,
  options: { statusUrl: (id: string) => string },
): HttpAnswer {
  switch (auth.outcome) {
    case 'allow':
      return { status: 200, headers: {}, body: { allowed: true } };
    case 'deny': {
      const message = MESSAGES[auth.code] ?? 'this action is not allowed';
      return {
        status: OpaErrorStatus[auth.code],
        headers: {
          ...(auth.code === 'unauthenticated' ? { 'www-authenticate': 'Bearer' } : {}),
          ...(auth.retryAfterSeconds !== undefined ? { 'retry-after': String(auth.retryAfterSeconds) } : {}),
        },
        body: { error: auth.code, message, reasons: auth.reasons },
      };
    }
    case 'unavailable':
      return {
        status: 503,
        headers: { 'retry-after': String(auth.retryAfterSeconds) },
        body: { error: auth.code, message: MESSAGES[auth.code] },
      };
    case 'escalate': {
      const statusUrl = options.statusUrl(auth.approval.id);
      return {
        status: 202,
        headers: { location: statusUrl },
        body: {
          error: 'approval_required',
          message: 'a human must approve this action; retry the same call with the approval id once approved',
          reasons: auth.decision.reasons,
          approval: {
            id: auth.approval.id,
            status: auth.approval.status,
            status_url: statusUrl,
            approvers: auth.approval.approvers,
            expires_at: new Date(auth.approval.expiresAt).toISOString(),
            ttl_seconds: auth.approval.ttlSeconds,
          },
          retry: { header: APPROVAL_HEADER, value: auth.approval.id },
        },
      };
    }
  }
}

/**
 * The HTTP answer for an error thrown while authorizing: an {@link OpaError} keeps its status, headers
 * and `{ error, message }`; anything else (a bug in an input mapper, unreadable input) is a 400
 * `input_invalid` without details, never a 500 with a stack trace.
 *
 * @example
 * ```ts
 * catch (err) { const r = errorAnswer(err); res.status(r.status).set(r.headers).json(r.body); }
 * ```
 */
export function errorAnswer(err: unknown): HttpAnswer {
  if (isOpaError(err)) return { status: err.status, headers: { ...err.headers }, body: err.toJSON() };
  return {
    status: 400,
    headers: {},
    body: { error: 'input_invalid', message: 'the request could not be turned into a policy input' },
  };
}
