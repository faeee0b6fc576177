import type { ApprovalRequirement } from './types.js';

/** What a policy result means, before the common fields are added. */
export type Reading =
  | { outcome: 'allow'; reasons: string[] }
  | { outcome: 'deny'; reasons: string[] }
  | { outcome: 'escalate'; reasons: string[]; approval: ApprovalRequirement }
  | { outcome: 'invalid'; message: string };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isStringArray = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((x) => typeof x === 'string');

/**
 * Reads a policy result as a decision. Accepted shapes: `true` / `false` (unless `objectOnly`), or an
 * object `{ allow: boolean, escalate?: boolean, reasons?: string[], approval?: { approvers, ttl_seconds } }`.
 * Anything else, or a contradiction (`allow` and `escalate` both true), is `invalid`: the caller
 * turns it into an `unavailable` decision, never an allow.
 *
 * @example
 * ```ts
 * readResult({ allow: false, escalate: true, reasons: ['approval_required'], approval: { approvers: ['a'], ttl_seconds: 60 } }, true);
 * ```
 */
export function readResult(result: unknown, objectOnly: boolean): Reading {
  if (typeof result === 'boolean' && !objectOnly) {
    return result ? { outcome: 'allow', reasons: [] } : { outcome: 'deny', reasons: ['policy_denied'] };
  }
  if (!isObject(result)) return { outcome: 'invalid', message: 'the policy result is not a decision object' };
  const { allow, escalate, reasons } = result;
  if (typeof allow !== 'boolean')
    return { outcome: 'invalid', message: 'the decision has no boolean "allow"' };
  if (escalate !== undefined && typeof escalate !== 'boolean') {
    return { outcome: 'invalid', message: 'the decision\'s "escalate" is not a boolean' };
  }
  if (objectOnly && typeof escalate !== 'boolean') {
    return { outcome: 'invalid', message: 'the decision has no boolean "escalate"' };
  }
  if (reasons !== undefined && !isStringArray(reasons)) {
    return { outcome: 'invalid', message: 'the decision\'s "reasons" is not an array of strings' };
  }
  if (objectOnly && reasons === undefined)
    return { outcome: 'invalid', message: 'the decision has no "reasons"' };
  const why = reasons ? [...reasons] : [];
  if (allow && escalate) return { outcome: 'invalid', message: 'the decision both allows and escalates' };
  if (allow) return { outcome: 'allow', reasons: why };
  if (!escalate) return { outcome: 'deny', reasons: why.length > 0 ? why : ['policy_denied'] };
  const approval = result.approval;
  if (
    !isObject(approval) ||
    !isStringArray(approval.approvers) ||
    typeof approval.ttl_seconds !== 'number' ||
    !Number.isInteger(approval.ttl_seconds) ||
    approval.ttl_seconds <= 0
  ) {
    return {
      outcome: 'invalid',
      message: 'an escalation needs "approval": { approvers: string[], ttl_seconds: positive integer }',
    };
  }
  return {
    outcome: 'escalate',
    reasons: why.length > 0 ? why : ['approval_required'],
    approval: Object.freeze({
      approvers: Object.freeze([...approval.approvers]),
      ttlSeconds: approval.ttl_seconds,
    }),
  };
}
