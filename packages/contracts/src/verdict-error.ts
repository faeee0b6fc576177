import { ContractError } from './errors.js';
import type { DeniedVerdict, OutputVerdict } from './types.js';

/**
 * The {@link ContractError} that answers a denied verdict over HTTP: its status (400, 403, 429, 502, 503),
 * `Retry-After` for an exhausted budget (until its window resets) or an unavailable store (1 second), and
 * the verdict's message. What the adapters send.
 *
 * @example
 * ```ts
 * const verdict = await registry.check(action);
 * if (!verdict.allowed) {
 *   const err = verdictError(verdict);
 *   res.status(err.status).set(err.headers).json({ ...err.toJSON(), errors: verdict.errors });
 * }
 * ```
 */
export function verdictError(
  verdict: DeniedVerdict | Extract<OutputVerdict, { allowed: false }>,
): ContractError {
  const headers: Record<string, string> =
    'budget' in verdict && verdict.budget
      ? { 'retry-after': String(verdict.budget.retryAfterSeconds) }
      : verdict.code === 'budget_store_unavailable'
        ? { 'retry-after': '1' }
        : {};
  return new ContractError(verdict.code, verdict.message, { headers });
}
