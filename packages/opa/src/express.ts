import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
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
  namespace Express {
    interface Request {
      /** Request state of the AMAS packages; `@amas/opa` sets `amas.opa`. */
      amas?: AmasRequestState;
    }
  }
  /** Request state shared by the AMAS packages, each under its own key. */
  interface AmasRequestState {
    /** The authorization that let the request through, set by `authorize()` of `@amas/opa`. */
    opa?: Authorization;
  }
}

/**
 * Options of the Express {@link authorize} guard.
 *
 * @example
 * ```ts
 * const options: AuthorizeOptions = { enforcer, toolAccess: (req) => ({ agentRole: 'code_reviewer', toolName: String(req.params.tool) }) };
 * ```
 */
export type AuthorizeOptions = GuardOptions<Request>;

const send = (res: Response, answer: HttpAnswer) => {
  res.status(answer.status).set(answer.headers).json(answer.body);
};

/**
 * Express guard: asks the policy and answers 403 (deny), 503 with `Retry-After` (OPA unavailable),
 * or 202 with the approval id and status URL (escalate). On allow, puts the {@link Authorization} on
 * `req.amas.opa` and calls `next()`. A client retries an escalated call with the `amas-approval-id`
 * header; the approval must match the same action, input and principal, and is used once.
 *
 * @example
 * ```ts
 * app.post('/tools/:tool', authenticate(verifier), express.json(),
 *   authorize({ enforcer, toolAccess: (req, p) => ({ agentRole: roleOf(p), toolName: req.params.tool, input: req.body }) }),
 *   runTool);
 * ```
 */
export function authorize(options: AuthorizeOptions): RequestHandler {
  const guard = createGuard<Request>(options, {
    principal: (req) => toPrincipal((req.amas as { auth?: unknown } | undefined)?.auth),
    approvalId: (req) => {
      const v = req.headers[APPROVAL_HEADER];
      return typeof v === 'string' ? v : undefined;
    },
  });
  return (req: Request, res: Response, next: NextFunction) => {
    guard(req).then(
      ({ authorization, answer }) => {
        if (answer) return send(res, answer);
        req.amas ??= {};
        req.amas.opa = authorization;
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

/**
 * Mountable approval routes: `GET /` (pending requests the caller may decide), `GET /:id` (status),
 * `POST /:id/approve`, `POST /:id/deny` (body `{ "reason": "..." }`; `Content-Type: application/json`
 * is required, any other type is a 415, so a cross-site form cannot approve). They never authenticate:
 * mount them behind your authentication and give `identity`.
 *
 * @example
 * ```ts
 * app.use('/approvals', authenticate(verifier), approvalRoutes({
 *   approvals: enforcer.approvals,
 *   identity: (req) => toPrincipal(req.amas?.auth),
 * }));
 * ```
 */
export function approvalRoutes(options: ApprovalRoutesOptions<Request>): RequestHandler {
  if (typeof options?.identity !== 'function' || typeof options?.approvals?.consume !== 'function') {
    throw new TypeError(
      'approvalRoutes: options "approvals" (enforcer.approvals) and "identity" (request => principal) are required',
    );
  }
  return (req: Request, res: Response, next: NextFunction) => {
    if (!isApprovalRoute(req.path)) return next();
    void (async () => {
      const contentType = req.headers['content-type'];
      // Only a JSON request is read: any other is refused (415) without touching its body.
      const body =
        req.method === 'POST' && isJsonContentType(contentType)
          ? req.body !== undefined
            ? req.body
            : await readJsonBody(req)
          : undefined;
      const answer = await handleApprovalRoute(options.approvals, {
        method: req.method,
        path: req.path,
        contentType,
        body,
        identity: await readIdentity(options.identity, req),
        statusUrl: (id) => `${req.baseUrl}/${encodeURIComponent(id)}`,
      });
      if (!answer) return next();
      send(res, answer);
    })().catch((err: unknown) => {
      if (isOpaError(err))
        return send(res, { status: err.status, headers: { ...err.headers }, body: err.toJSON() });
      next(err);
    });
  };
}

/**
 * Express error middleware that answers an `OpaError` with its status, headers and
 * `{ error, message }` body, and passes every other error on unchanged.
 *
 * @example
 * ```ts
 * import { errorHandler } from '@amas/opa/express';
 * app.use(errorHandler());
 * ```
 */
export function errorHandler(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!isOpaError(err) || res.headersSent) return next(err);
    res.status(err.status).set(err.headers).json(err.toJSON());
  };
}

export { toPrincipal };
