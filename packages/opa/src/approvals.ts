import { randomUUID } from 'node:crypto';
import { createMemoryApprovalStore } from './approval-store-memory.js';
import { OpaError } from './errors.js';
import { actionHash, canonicalJson } from './hash.js';
import { approvalsOptionsSchema, parseOptions } from './options.js';
import { approvalPrincipal, isValidPrincipal, MAX_ISSUER_LENGTH, samePrincipal } from './principal.js';
import { swallow } from './swallow.js';
import type {
  ApprovalAuditEvent,
  ApprovalCreateResult,
  ApprovalRecord,
  ApprovalRequirement,
  ApprovalStore,
  ApprovalStoreResult,
  ApprovalView,
  Principal,
} from './types.js';

/**
 * The approval workflow: an escalated action becomes a pending request bound to the action (path +
 * input hash), the principal and OPA's `decision_id`; an approver holding one of the required scopes
 * approves or denies it; an approval expires, is used at most once, and every step is audited.
 *
 * A principal is the pair (`iss`, `sub`) everywhere here: use, view, the list, the per-principal
 * limit, re-escalation and the self-approval rule. A principal without `iss` matches only a record
 * without `iss`. A principal whose `sub` is not a non-empty string, or whose `iss` is present but not
 * a non-empty string of at most 2,048 characters, is refused with `unauthenticated`.
 *
 * @example
 * ```ts
 * const approvals = createApprovals({ store: createRedisApprovalStore({ redis }) });
 * const rec = await approvals.approve(id, { sub: 'alice', scopes: ['approvals:security'] }, 'change ticket 42');
 * ```
 */
export interface Approvals {
  readonly store: ApprovalStore;
  /**
   * Creates a pending request, or answers the pending request the same principal already has for the
   * same action (path and input hash, approvers, TTL): re-escalating is idempotent. Throws
   * {@link OpaError} `approval_limit` (429, `Retry-After`) when the principal already has
   * `maxPendingPerPrincipal` pending requests, and `approval_unavailable` (503) when the store is full
   * or fails.
   */
  request(args: {
    path: string;
    input: unknown;
    principal: Principal;
    decisionId?: string;
    approval: ApprovalRequirement;
  }): Promise<ApprovalRecord>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  /**
   * Pending requests that `identity` may decide (never its own: same `iss` and `sub`), oldest first,
   * among the 1,000 oldest pending ones.
   */
  listPending(identity: Principal, limit?: number): Promise<ApprovalRecord[]>;
  approve(id: string, approver: Principal, reason?: string): Promise<ApprovalRecord>;
  deny(id: string, approver: Principal, reason?: string): Promise<ApprovalRecord>;
  /**
   * Uses an approval for exactly this action and principal (same `iss` and `sub`); throws
   * {@link OpaError} when refused.
   */
  consume(id: string, use: { path: string; input: unknown; principal: Principal }): Promise<ApprovalRecord>;
  /** May `identity` see this request (the requester, same `iss` and `sub`, or an eligible approver)? */
  canView(record: ApprovalRecord, identity: Principal): boolean;
  /** May `identity` approve or deny this request (a scope it needs, and not the requester)? */
  canDecide(record: ApprovalRecord, identity: Principal): boolean;
  /** The HTTP view of a record (ISO times, `expired` computed). */
  view(record: ApprovalRecord, statusUrl?: string): ApprovalView;
}

/**
 * Options of {@link createApprovals}.
 *
 * @example
 * ```ts
 * const options: ApprovalsOptions = { pendingTtlSeconds: 900, onAudit: (e) => console.log(e.action, e.by) };
 * ```
 */
export interface ApprovalsOptions {
  /** Where approvals live; defaults to an in-memory store (one process, lost on restart). */
  store?: ApprovalStore;
  /** How long a pending request waits for a decision. Default 3600. */
  pendingTtlSeconds?: number;
  /**
   * At most this many pending (undecided, unexpired) requests per principal, across every replica that
   * shares the store; past it an escalation is refused with `approval_limit` (429). Default 20.
   */
  maxPendingPerPrincipal?: number;
  /** Let a principal approve its own request. Default `false` (separation of duties). */
  allowSelfApproval?: boolean;
  /** Bound on each store operation; past it the operation counts as `approval_unavailable`. Default 1000 ms. */
  storeTimeoutMs?: number;
  /** Receives every audit event, including refused uses. */
  onAudit?: (event: ApprovalAuditEvent) => void;
  /** Clock, for tests. */
  now?: () => number;
}

const ID = /^[A-Za-z0-9_-]{8,128}$/;
const MAX_REASON = 1_000;
const LIST_WINDOW = 1_000;

type RefusalCode = Extract<ApprovalStoreResult, { ok: false }>['code'];

const REFUSALS: Readonly<Record<RefusalCode, string>> = Object.freeze({
  approval_not_found: 'no such approval request',
  approval_expired: 'the approval has expired',
  approval_already_used: 'the approval has already been used',
  approval_already_decided: 'the approval request has already been decided',
  approval_pending: 'the approval request has not been approved yet',
  approval_denied: 'the approval request was denied',
  approval_mismatch: 'the approval was granted for another action or principal',
});

const retryAfter = (ms: number) => String(Math.max(1, Math.ceil(ms / 1_000)));

const isCreateResult = (r: unknown): r is ApprovalCreateResult => {
  if (typeof r !== 'object' || r === null) return false;
  const v = r as Record<string, unknown>;
  if (v.ok === true)
    return typeof v.created === 'boolean' && typeof v.record === 'object' && v.record !== null;
  return (
    v.ok === false &&
    (v.code === 'approval_limit' || v.code === 'approval_store_full') &&
    typeof v.retryAfterMs === 'number'
  );
};

const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());

const INVALID_PRINCIPAL = `the principal needs a non-empty string "sub", and an "iss" that is absent or a non-empty string of at most ${MAX_ISSUER_LENGTH} characters`;

function storeFailure(err: unknown): OpaError {
  return new OpaError('approval_unavailable', 'the approval store is unavailable', {
    cause: err,
    headers: { 'retry-after': '1' },
  });
}

/**
 * Creates the {@link Approvals} workflow over an {@link ApprovalStore}.
 *
 * @example
 * ```ts
 * const approvals = createApprovals({ pendingTtlSeconds: 900, onAudit: (e) => audit.info(e) });
 * ```
 */
export function createApprovals(options: ApprovalsOptions = {}): Approvals {
  const o = parseOptions(approvalsOptionsSchema, options, 'createApprovals');
  const store = (o.store as ApprovalStore | undefined) ?? createMemoryApprovalStore();
  const now = (o.now as (() => number) | undefined) ?? Date.now;
  const onAudit = o.onAudit as ((e: ApprovalAuditEvent) => void) | undefined;
  const config = Object.freeze({
    pendingTtlMs: o.pendingTtlSeconds * 1000,
    allowSelfApproval: o.allowSelfApproval,
    limits: Object.freeze({ maxPendingPerPrincipal: o.maxPendingPerPrincipal }),
  });

  const audit = (e: ApprovalAuditEvent) => {
    if (!onAudit) return;
    try {
      // An audit sink that fails must not change the outcome, nor leave an unhandled rejection.
      swallow(onAudit(Object.freeze(e)) as unknown);
    } catch {
      // as above, for a sink that throws
    }
  };

  // Scopes must be an array: a space-separated OAuth "scope" string would match by substring.
  // The requester is the pair (iss, sub): alice of another issuer is another person.
  const canDecide = (record: ApprovalRecord, identity: Principal) =>
    isValidPrincipal(identity) &&
    (config.allowSelfApproval || !samePrincipal(identity, record.principal)) &&
    Array.isArray(identity.scopes) &&
    record.approvers.some((scope) => identity.scopes?.includes(scope) === true);

  const checkReason = (reason: unknown): string | undefined => {
    if (reason === undefined) return undefined;
    if (typeof reason !== 'string' || reason.length > MAX_REASON) {
      throw new OpaError('input_invalid', `the reason must be a string of at most ${MAX_REASON} characters`);
    }
    return reason;
  };

  async function safe<T>(op: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        op(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('approval store timeout')), o.storeTimeoutMs);
        }),
      ]);
    } catch (err) {
      throw storeFailure(err);
    } finally {
      clearTimeout(timer);
    }
  }

  function unwrap(result: ApprovalStoreResult): ApprovalRecord {
    if (result.ok) return result.record;
    throw new OpaError(result.code, REFUSALS[result.code]);
  }

  async function decideAs(status: 'approved' | 'denied', id: string, approver: Principal, reason?: string) {
    const why = checkReason(reason);
    if (typeof approver?.sub !== 'string' || approver.sub === '') {
      throw new OpaError('unauthenticated', 'an approver must be authenticated');
    }
    if (!isValidPrincipal(approver)) throw new OpaError('unauthenticated', INVALID_PRINCIPAL);
    const record = ID.test(id) ? await safe(() => store.get(id)) : undefined;
    if (!record) throw new OpaError('approval_not_found', 'no such approval request');
    if (!canDecide(record, approver)) {
      throw new OpaError(
        'approval_forbidden',
        samePrincipal(approver, record.principal) && !config.allowSelfApproval
          ? 'a principal cannot decide its own approval request'
          : `deciding this request needs one of the scopes: ${record.approvers.join(', ')}`,
      );
    }
    const at = now();
    const result = await safe(() =>
      store.decide(id, {
        status,
        by: approver.sub,
        ...(approver.iss !== undefined ? { byIss: approver.iss } : {}),
        at,
        ...(why !== undefined ? { reason: why } : {}),
        ...(status === 'approved' ? { expiresAt: at + record.ttlSeconds * 1000 } : {}),
      }),
    );
    const updated = unwrap(result);
    audit({
      id,
      action: status,
      by: approver.sub,
      ...(approver.iss !== undefined ? { iss: approver.iss } : {}),
      at,
      ...(why !== undefined ? { reason: why } : {}),
      path: record.path,
      actionHash: record.actionHash,
    });
    return updated;
  }

  const api: Approvals = {
    store,
    async request(args) {
      if (typeof args.principal?.sub !== 'string' || args.principal.sub === '') {
        throw new OpaError('unauthenticated', 'an escalated action needs an authenticated principal');
      }
      if (!isValidPrincipal(args.principal)) throw new OpaError('unauthenticated', INVALID_PRINCIPAL);
      const principal = approvalPrincipal(args.principal);
      const iss = principal.iss !== undefined ? { iss: principal.iss } : {};
      const inputJson = canonicalJson(args.input);
      const at = now();
      const record: ApprovalRecord = Object.freeze({
        id: randomUUID(),
        status: 'pending' as const,
        path: args.path,
        input: JSON.parse(inputJson) as unknown,
        actionHash: actionHash(args.path, inputJson),
        principal,
        ...(args.decisionId ? { decisionId: args.decisionId } : {}),
        approvers: Object.freeze([...args.approval.approvers]),
        ttlSeconds: args.approval.ttlSeconds,
        createdAt: at,
        expiresAt: at + config.pendingTtlMs,
        audit: Object.freeze([
          Object.freeze({ at, action: 'requested' as const, by: principal.sub, ...iss }),
        ]),
      });
      const result: unknown = await safe(() => store.create(record, config.limits));
      // A store written for another version of the interface must not let escalations through unbounded.
      if (!isCreateResult(result))
        throw storeFailure(new Error('the approval store answered create() oddly'));
      if (!result.ok) {
        audit({
          id: '',
          action: 'refused',
          by: principal.sub,
          ...iss,
          at,
          path: record.path,
          actionHash: record.actionHash,
          code: result.code,
        });
        const headers = { 'retry-after': retryAfter(result.retryAfterMs) };
        if (result.code === 'approval_store_full') {
          throw new OpaError('approval_unavailable', 'the approval store is full; retry later', { headers });
        }
        throw new OpaError(
          'approval_limit',
          `this principal already has ${config.limits.maxPendingPerPrincipal} pending approval requests; wait for a decision, or retry later`,
          { headers },
        );
      }
      const got = result.record;
      // Hand back only a request bound to this very action and principal, whatever the store says
      // (a custom store that ignores `iss` must not hand alice@A's request to alice@B).
      if (got.actionHash !== record.actionHash || !samePrincipal(got.principal, principal)) {
        throw storeFailure(new Error('the approval store answered another request'));
      }
      if (result.created) {
        audit({
          id: record.id,
          action: 'requested',
          by: principal.sub,
          ...iss,
          at,
          path: record.path,
          actionHash: record.actionHash,
        });
      }
      return got;
    },
    async get(id) {
      if (!ID.test(id)) return undefined;
      return safe(() => store.get(id));
    },
    async listPending(identity, limit = 100) {
      // Filter a wide window, then cut: asking the store for `limit` records first would let older
      // requests for other approvers hide every request this identity may decide.
      const records = await safe(() => store.listPending(now(), LIST_WINDOW));
      return records
        .filter((r) => canDecide(r, identity))
        .slice(0, Math.min(Math.max(1, limit), LIST_WINDOW));
    },
    approve(id, approver, reason) {
      return decideAs('approved', id, approver, reason);
    },
    deny(id, approver, reason) {
      return decideAs('denied', id, approver, reason);
    },
    async consume(id, use) {
      const hash = actionHash(use.path, canonicalJson(use.input));
      const at = now();
      const valid = isValidPrincipal(use.principal);
      const iss = valid && use.principal.iss !== undefined ? { iss: use.principal.iss } : {};
      const refuse = (code: RefusalCode) => {
        audit({
          id,
          action: 'refused',
          by: typeof use.principal?.sub === 'string' ? use.principal.sub : '',
          ...iss,
          at,
          path: use.path,
          actionHash: hash,
          code,
        });
        return new OpaError(code, REFUSALS[code]);
      };
      if (!ID.test(id) || typeof use.principal?.sub !== 'string') throw refuse('approval_not_found');
      if (!valid) {
        audit({
          id,
          action: 'refused',
          by: use.principal.sub,
          at,
          path: use.path,
          actionHash: hash,
          code: 'unauthenticated',
        });
        throw new OpaError('unauthenticated', INVALID_PRINCIPAL);
      }
      const sub = use.principal.sub;
      const result = await safe(() => store.consume(id, { actionHash: hash, sub, ...iss, at }));
      if (!result.ok) throw refuse(result.code);
      // A custom store that ignores `iss` would have used someone else's approval: never allow on it.
      if (result.record.actionHash !== hash || !samePrincipal(result.record.principal, use.principal)) {
        throw refuse('approval_mismatch');
      }
      audit({ id, action: 'used', by: sub, ...iss, at, path: use.path, actionHash: hash });
      return result.record;
    },
    canView(record, identity) {
      return (
        (isValidPrincipal(identity) && samePrincipal(identity, record.principal)) ||
        canDecide(record, identity)
      );
    },
    canDecide,
    view(record, statusUrl) {
      const expired =
        (record.status === 'pending' || record.status === 'approved') && record.expiresAt <= now();
      const v: Record<string, unknown> = {
        id: record.id,
        status: expired ? 'expired' : record.status,
        path: record.path,
        input: record.input,
        principal:
          record.principal.iss === undefined
            ? { sub: record.principal.sub }
            : { sub: record.principal.sub, iss: record.principal.iss },
        approvers: record.approvers,
        ttl_seconds: record.ttlSeconds,
        decision_id: record.decisionId,
        created_at: iso(record.createdAt),
        expires_at: iso(record.expiresAt),
        decided_by: record.decidedBy,
        decided_by_iss: record.decidedByIss,
        decided_at: iso(record.decidedAt),
        reason: record.reason,
        used_at: iso(record.usedAt),
        status_url: statusUrl,
        audit: record.audit.map((e) => ({
          at: iso(e.at),
          action: e.action,
          by: e.by,
          ...(e.iss !== undefined ? { iss: e.iss } : {}),
          ...(e.reason ? { reason: e.reason } : {}),
        })),
      };
      for (const k of Object.keys(v)) if (v[k] === undefined) delete v[k];
      return v as unknown as ApprovalView;
    },
  };
  return Object.freeze(api);
}
