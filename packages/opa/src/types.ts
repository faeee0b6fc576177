import type { OpaErrorCode } from './errors.js';

/**
 * Why a decision could not be obtained from OPA. Every kind ends in a denial unless a fallback was
 * configured explicitly for the call.
 *
 * @example
 * ```ts
 * if (decision.outcome === 'unavailable' && decision.cause.kind === 'timeout') metrics.opaTimeouts++;
 * ```
 */
export type UnavailableKind =
  /** Connection refused, reset before the answer, DNS failure: OPA could not be reached. */
  | 'down'
  /** No complete answer within `timeoutMs`. */
  | 'timeout'
  /** OPA answered 4xx or 5xx (its `{ code, message, errors }` body is in the cause). */
  | 'http_error'
  /** The body was not JSON, was cut off, or was not a JSON object. */
  | 'malformed'
  /** The body exceeded `maxResponseBytes` and was not parsed. */
  | 'too_large'
  /** The result had a shape this library does not read as a decision. */
  | 'unexpected_result'
  /** The circuit breaker is open: OPA kept failing, so it was not asked. */
  | 'breaker_open';

/**
 * The cause of an `unavailable` decision: for logs and operators, never sent to clients.
 *
 * @example
 * ```ts
 * logger.warn({ kind: cause.kind, status: cause.status, code: cause.code }, 'OPA unavailable');
 * ```
 */
export interface UnavailableCause {
  readonly kind: UnavailableKind;
  readonly message: string;
  /** HTTP status of OPA's answer, for `http_error`. */
  readonly status?: number;
  /** OPA's error `code` (for example `internal_error`), for `http_error`. */
  readonly code?: string;
  /** OPA's detailed `errors` (for example `eval_conflict_error` with a location), for `http_error`. */
  readonly errors?: readonly OpaErrorDetail[];
}

/**
 * One entry of OPA's `errors` array.
 *
 * @example
 * ```ts
 * const detail: OpaErrorDetail = { code: 'eval_conflict_error', message: 'complete rules must not produce multiple outputs' };
 * ```
 */
export interface OpaErrorDetail {
  readonly code: string;
  readonly message: string;
  readonly location?: { readonly file: string; readonly row: number; readonly col: number };
}

/**
 * OPA's provenance block (`?provenance`): the OPA version and the revision of each bundle.
 *
 * @example
 * ```ts
 * const rev = decision.provenance?.bundles?.authz?.revision;
 * ```
 */
export interface Provenance {
  readonly version?: string;
  readonly build_commit?: string;
  readonly build_timestamp?: string;
  readonly build_hostname?: string;
  readonly bundles?: Readonly<Record<string, { readonly revision: string }>>;
}

/**
 * What the low-level client read from one Data API call. It never throws for OPA's failures.
 *
 * @example
 * ```ts
 * const r = await client.evaluate('httpapi/authz/allow', { user: 'alice' });
 * if (r.ok && r.defined) console.log(r.result);
 * ```
 */
export type OpaResponse =
  | {
      readonly ok: true;
      /** `false` when OPA answered 200 without a `result` key: the rule is undefined. */
      readonly defined: boolean;
      readonly result?: unknown;
      readonly decisionId?: string;
      readonly provenance?: Provenance;
      readonly warning?: { readonly code: string; readonly message: string };
    }
  | { readonly ok: false; readonly cause: UnavailableCause };

/**
 * Result of a health check on OPA's `/health`.
 *
 * @example
 * ```ts
 * const h = await client.health({ bundles: true });
 * if (!h.healthy) console.warn(h.error);
 * ```
 */
export interface HealthStatus {
  readonly healthy: boolean;
  /** HTTP status, when OPA answered. */
  readonly status?: number;
  /** OPA's `error` text or the network failure. */
  readonly error?: string;
}

/**
 * Who must approve an escalated action, and how long the approval stays usable once granted.
 *
 * @example
 * ```ts
 * if (d.outcome === 'escalate') console.log(d.approval.approvers, d.approval.ttlSeconds);
 * ```
 */
export interface ApprovalRequirement {
  /** Scopes an approver must hold (any one of them). */
  readonly approvers: readonly string[];
  /** Seconds an approval stays usable (once) after it is granted. */
  readonly ttlSeconds: number;
}

interface DecisionCommon {
  /** The Data API path that was asked, for example `amas/tool_access/decision`. */
  readonly path: string;
  /** OPA's `decision_id`, present when OPA has decision logging on. */
  readonly decisionId?: string;
  /** OPA's provenance, when `provenance: true`. */
  readonly provenance?: Provenance;
  /** `true` when the decision came from the decision cache. */
  readonly cached: boolean;
}

/**
 * OPA allowed. `allowed` is the literal `true` only here, so `if (d.allowed)` cannot be fooled by
 * the other outcomes. `fallback` is set only when OPA was unavailable and the call was configured
 * to fall back to allow.
 *
 * @example
 * ```ts
 * if (d.outcome === 'allow' && !d.fallback) runTool();
 * ```
 */
export interface AllowDecision extends DecisionCommon {
  readonly outcome: 'allow';
  readonly allowed: true;
  readonly reasons: readonly string[];
  readonly result?: unknown;
  /** Present only on a configured fallback: the cause of the unavailability that was overridden. */
  readonly fallback?: UnavailableCause;
}

/**
 * OPA denied, with the policy's reasons (stable codes such as `tool_not_allowed`).
 *
 * @example
 * ```ts
 * if (d.outcome === 'deny') res.status(403).json({ reasons: d.reasons });
 * ```
 */
export interface DenyDecision extends DecisionCommon {
  readonly outcome: 'deny';
  readonly allowed: false;
  readonly reasons: readonly string[];
  readonly result: unknown;
}

/**
 * OPA asks for a human approval before the action may run.
 *
 * @example
 * ```ts
 * if (d.outcome === 'escalate') await approvals.request({ ... });
 * ```
 */
export interface EscalateDecision extends DecisionCommon {
  readonly outcome: 'escalate';
  readonly allowed: false;
  readonly reasons: readonly string[];
  readonly approval: ApprovalRequirement;
  readonly result: unknown;
}

/**
 * OPA answered without a result: the rule is undefined for this input. Treated as a denial.
 *
 * @example
 * ```ts
 * if (d.outcome === 'undefined') log.warn('policy path has no rule', d.path);
 * ```
 */
export interface UndefinedDecision extends DecisionCommon {
  readonly outcome: 'undefined';
  readonly allowed: false;
  readonly reasons: readonly ['policy_undefined'];
}

/**
 * No decision could be obtained: OPA down, slow, failing or answering nonsense. Treated as a denial.
 *
 * @example
 * ```ts
 * if (d.outcome === 'unavailable') res.set('Retry-After', String(d.retryAfterSeconds)).sendStatus(503);
 * ```
 */
export interface UnavailableDecision extends Omit<DecisionCommon, 'cached'> {
  readonly outcome: 'unavailable';
  readonly allowed: false;
  readonly cached: false;
  readonly reasons: readonly ['policy_unavailable'];
  readonly cause: UnavailableCause;
  /** A hint for `Retry-After`: when the breaker will probe OPA again, or 1 second. */
  readonly retryAfterSeconds: number;
}

/**
 * A policy decision: five outcomes a caller cannot confuse. Only `allow` has `allowed: true`.
 *
 * @example
 * ```ts
 * const d = await enforcer.decide('httpapi/authz', input);
 * switch (d.outcome) {
 *   case 'allow': break;
 *   case 'escalate': break; // approval required
 *   default: throw new Error(d.reasons.join(','));
 * }
 * ```
 */
export type Decision =
  | AllowDecision
  | DenyDecision
  | EscalateDecision
  | UndefinedDecision
  | UnavailableDecision;

/**
 * The authenticated caller, as far as this package needs it: a subject, the issuer that vouches for
 * it, and its scopes. In the approval workflow a principal is the pair (`iss`, `sub`): with several
 * issuers, `alice` of one issuer and `alice` of another are two people. A principal without `iss`
 * is only ever the same as another principal without `iss` (never a wildcard).
 *
 * @example
 * ```ts
 * const principal: Principal = { sub: 'agent-42', iss: 'https://login.example.com/', scopes: ['agents:invoke'] };
 * ```
 */
export interface Principal {
  readonly sub: string;
  /**
   * The issuer of the token that authenticated `sub` (`@amas/oidc`'s `issuer`). Optional; when
   * present it must be a non-empty string of at most 2,048 characters, or the approval workflow
   * refuses the principal with `unauthenticated` (never treats it as absent).
   */
  readonly iss?: string;
  readonly scopes?: readonly string[];
}

/**
 * Who a principal is in an approval record: its `sub`, and its `iss` when it had one. Records written
 * before `iss` existed have none, and keep matching principals without `iss`.
 *
 * @example
 * ```ts
 * const who: ApprovalPrincipal = { sub: 'alice', iss: 'https://idp-a.example.com/' };
 * ```
 */
export interface ApprovalPrincipal {
  readonly sub: string;
  readonly iss?: string;
}

/**
 * A tool call to check against the shipped tool-access policy.
 *
 * @example
 * ```ts
 * const req: ToolAccessRequest = { agentRole: 'security_auditor', toolName: 'run_scan', input: { mode: 'active' } };
 * ```
 */
export interface ToolAccessRequest {
  readonly agentRole: string;
  readonly toolName: string;
  /** The tool's input; must be a JSON object when present. */
  readonly input?: Readonly<Record<string, unknown>>;
  /** Who calls: sent to OPA as `subject` (`sub` and `scopes` only). */
  readonly subject?: Principal;
}

/**
 * What happens when OPA is unavailable: `deny` (the default) or, only when configured, `allow`.
 *
 * @example
 * ```ts
 * const fallback: Fallback = 'deny';
 * ```
 */
export type Fallback = 'deny' | 'allow';

/**
 * Per-call options of `decide` and `checkToolAccess`.
 *
 * @example
 * ```ts
 * await enforcer.decide('public/read', input, { fallback: 'allow' });
 * ```
 */
export interface DecideOptions {
  /** Explicit fallback when OPA is unavailable. Defaults to `deny` (fail closed). */
  readonly fallback?: Fallback;
  /** Skip the decision cache for this call. */
  readonly noCache?: boolean;
}

/**
 * One request to authorize: the policy input (or a tool call), who asks, and the id of an
 * approval when the caller retries an escalated call.
 *
 * @example
 * ```ts
 * await enforcer.authorize({ toolAccess: { agentRole, toolName, input }, principal, approvalId });
 * ```
 */
export type AuthorizeRequest = {
  readonly principal?: Principal;
  /** The approval id a client got with its 202, sent back when it retries the same call. */
  readonly approvalId?: string;
  readonly fallback?: Fallback;
} & (
  | {
      readonly toolAccess: Omit<ToolAccessRequest, 'subject'>;
      readonly path?: undefined;
      readonly input?: undefined;
    }
  | { readonly path: string; readonly input: unknown; readonly toolAccess?: undefined }
);

/**
 * The answer to {@link AuthorizeRequest}: four outcomes, each with the decision behind it.
 * `deny` also covers an undefined decision and a refused approval (`error.code` says which).
 *
 * @example
 * ```ts
 * const a = await enforcer.authorize({ toolAccess, principal });
 * if (a.allowed) await runTool();
 * ```
 */
export type Authorization =
  | {
      readonly outcome: 'allow';
      readonly allowed: true;
      readonly decision: Decision;
      /** The approval that was consumed to allow this call, if any. */
      readonly approval?: ApprovalRecord;
    }
  | {
      readonly outcome: 'deny';
      readonly allowed: false;
      readonly decision: Decision;
      readonly reasons: readonly string[];
      /**
       * `policy_denied`, `policy_undefined`, why a presented approval was refused, or `approval_limit`
       * (too many pending approval requests of this principal: retry after `retryAfterSeconds`).
       */
      readonly code: OpaErrorCode;
      /** For `approval_limit`: seconds until the principal's oldest pending request expires. */
      readonly retryAfterSeconds?: number;
    }
  | {
      readonly outcome: 'escalate';
      readonly allowed: false;
      readonly decision: EscalateDecision;
      readonly approval: ApprovalRecord;
    }
  | {
      readonly outcome: 'unavailable';
      readonly allowed: false;
      readonly decision: Decision;
      readonly retryAfterSeconds: number;
      readonly code: 'policy_unavailable' | 'approval_unavailable';
    };

/**
 * The life of an approval: pending, then approved or denied; an approved one becomes used.
 *
 * @example
 * ```ts
 * const done = (s: ApprovalStatus) => s === 'denied' || s === 'used';
 * ```
 */
export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'used';

/**
 * One audit entry of an approval: who did what, when, and why.
 *
 * @example
 * ```ts
 * for (const e of record.audit) console.log(new Date(e.at).toISOString(), e.action, e.by, e.reason);
 * ```
 */
export interface ApprovalAuditEntry {
  readonly at: number;
  readonly action: 'requested' | 'approved' | 'denied' | 'used';
  /** The `sub` of who acted. */
  readonly by: string;
  /** The `iss` of who acted, when that principal had one. */
  readonly iss?: string;
  readonly reason?: string;
}

/**
 * An approval request, bound to one action (path + input hash), one principal and OPA's decision id.
 * Times are milliseconds since the epoch.
 *
 * @example
 * ```ts
 * const rec = await approvals.get(id);
 * if (rec?.status === 'approved' && rec.expiresAt > Date.now()) console.log('usable once');
 * ```
 */
export interface ApprovalRecord {
  readonly id: string;
  readonly status: ApprovalStatus;
  /** The Data API path whose decision escalated. */
  readonly path: string;
  /** The policy input the approver sees and approves. */
  readonly input: unknown;
  /** SHA-256 (base64url) of the path and the canonical JSON of the input. */
  readonly actionHash: string;
  /**
   * The requester: only the same (`iss`, `sub`) pair may see the request as its requester, use it, or
   * get it back when re-escalating; a principal with that pair can never approve it (unless
   * `allowSelfApproval`). `iss` is absent for a principal without one (and in records written before
   * it existed).
   */
  readonly principal: ApprovalPrincipal;
  readonly decisionId?: string;
  readonly approvers: readonly string[];
  readonly ttlSeconds: number;
  readonly createdAt: number;
  /** Deadline: for a pending request, to be decided; once approved, to be used. */
  readonly expiresAt: number;
  /** The `sub` of the approver who decided. */
  readonly decidedBy?: string;
  /** The `iss` of the approver who decided, when that principal had one. */
  readonly decidedByIss?: string;
  readonly decidedAt?: number;
  readonly reason?: string;
  readonly usedAt?: number;
  readonly audit: readonly ApprovalAuditEntry[];
}

/**
 * What a store answers to a state change: the new record, or why the change was refused.
 *
 * @example
 * ```ts
 * const r = await store.consume(id, { actionHash, sub, iss, at: Date.now() });
 * if (!r.ok) console.log(r.code);
 * ```
 */
export type ApprovalStoreResult =
  | { readonly ok: true; readonly record: ApprovalRecord }
  | {
      readonly ok: false;
      readonly code:
        | 'approval_not_found'
        | 'approval_expired'
        | 'approval_already_used'
        | 'approval_already_decided'
        | 'approval_pending'
        | 'approval_denied'
        | 'approval_mismatch';
    };

/**
 * Limits a store enforces, atomically, when it creates an approval request.
 *
 * @example
 * ```ts
 * await store.create(record, { maxPendingPerPrincipal: 20 });
 * ```
 */
export interface ApprovalCreateLimits {
  /**
   * At most this many pending (undecided, unexpired at `record.createdAt`) requests per principal
   * (the pair `principal.iss`, `principal.sub`), counted across every replica that shares the store.
   */
  readonly maxPendingPerPrincipal: number;
}

/**
 * What a store answers to `create`: the request (a new one, or the pending request the same principal
 * already has for the same action), or why none was created. `retryAfterMs` is a hint: the time until
 * the earliest pending deadline that would free room.
 *
 * @example
 * ```ts
 * const r = await store.create(record, { maxPendingPerPrincipal: 20 });
 * if (r.ok && !r.created) console.log('already pending', r.record.id);
 * ```
 */
export type ApprovalCreateResult =
  | {
      readonly ok: true;
      readonly record: ApprovalRecord;
      /** `false` when `record` is the principal's existing pending request for the same action. */
      readonly created: boolean;
    }
  | {
      readonly ok: false;
      /**
       * `approval_limit`: the principal already has `maxPendingPerPrincipal` pending requests;
       * `approval_store_full`: the store holds its maximum of live records.
       */
      readonly code: 'approval_limit' | 'approval_store_full';
      readonly retryAfterMs: number;
    };

/**
 * Where approvals live. Each state change is atomic (compare-and-set inside the store), so that
 * an approval is used at most once across replicas. Implementations: {@link createMemoryApprovalStore}
 * (one process) and {@link createRedisApprovalStore} (several replicas, survives restarts).
 *
 * @example
 * ```ts
 * const store: ApprovalStore = createMemoryApprovalStore();
 * ```
 */
export interface ApprovalStore {
  /**
   * Creates a pending request, in one atomic step that also: answers the principal's existing pending
   * request for the same action instead (same `principal.iss` and `principal.sub`, where an absent
   * `iss` equals only an absent `iss`; same `actionHash`, `approvers` and `ttlSeconds`), and refuses
   * when that principal has `limits.maxPendingPerPrincipal` pending requests or the store is full.
   * Throws only when the store itself fails.
   */
  create(record: ApprovalRecord, limits: ApprovalCreateLimits): Promise<ApprovalCreateResult>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  /** Pending requests that have not expired at `now`, oldest first, at most `limit`. */
  listPending(now: number, limit: number): Promise<ApprovalRecord[]>;
  /** pending -> approved | denied, only if still pending and unexpired at `change.at`. */
  decide(
    id: string,
    change: {
      readonly status: 'approved' | 'denied';
      /** The approver's `sub`. */
      readonly by: string;
      /** The approver's `iss`, when it has one. */
      readonly byIss?: string;
      readonly at: number;
      readonly reason?: string;
      /** New deadline (approved: at + ttl); omitted for a denial. */
      readonly expiresAt?: number;
    },
  ): Promise<ApprovalStoreResult>;
  /**
   * approved -> used, only for the same action hash and the same principal (`sub` and `iss`; an absent
   * `iss` matches only a record without one), unexpired at `use.at`.
   */
  consume(
    id: string,
    use: { readonly actionHash: string; readonly sub: string; readonly iss?: string; readonly at: number },
  ): Promise<ApprovalStoreResult>;
  close?(): Promise<void>;
}

/**
 * One decision-log event, with the fields of OPA's own decision logs so that both can be joined on
 * `decision_id`. The input is included only with `decisionLog.includeInput: true`.
 *
 * @example
 * ```ts
 * createEnforcer({ url, decisionLog: { onDecision: (e) => logger.info(e, 'opa decision') } });
 * ```
 */
export interface DecisionLogEvent {
  readonly decision_id?: string;
  readonly path: string;
  readonly outcome: Decision['outcome'];
  readonly reasons: readonly string[];
  readonly result?: unknown;
  readonly input?: unknown;
  /** SHA-256 (base64url) of the canonical input: join events without logging the input. */
  readonly input_hash: string;
  readonly bundles?: Readonly<Record<string, { readonly revision: string }>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly requested_by?: string;
  readonly timestamp: string;
  readonly cached: boolean;
  readonly duration_ms: number;
  readonly fallback: boolean;
  readonly cause?: UnavailableCause;
}

/**
 * The view of an approval sent over HTTP by the approval routes and in a 202 answer.
 *
 * @example
 * ```ts
 * const view: ApprovalView = await (await fetch(statusUrl, { headers })).json();
 * ```
 */
export interface ApprovalView {
  readonly id: string;
  readonly status: ApprovalStatus | 'expired';
  readonly path: string;
  readonly input: unknown;
  readonly principal: ApprovalPrincipal;
  readonly approvers: readonly string[];
  readonly ttl_seconds: number;
  readonly decision_id?: string;
  readonly created_at: string;
  readonly expires_at: string;
  readonly decided_by?: string;
  readonly decided_by_iss?: string;
  readonly decided_at?: string;
  readonly reason?: string;
  readonly used_at?: string;
  readonly status_url?: string;
  readonly audit: readonly { at: string; action: string; by: string; iss?: string; reason?: string }[];
}

/**
 * A framework-free HTTP answer computed by the core; adapters only copy it to the response.
 *
 * @example
 * ```ts
 * res.status(r.status).set(r.headers).json(r.body);
 * ```
 */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
}

/**
 * What the approvals' `onAudit` hook receives: every state change, every refused use of an approval
 * and every escalation refused by a limit (with the refusal code), so that an operator sees attempts
 * (and floods) as well as successes.
 *
 * @example
 * ```ts
 * createApprovals({ onAudit: (e) => auditLog.write(e) });
 * ```
 */
export interface ApprovalAuditEvent {
  /** The request's id; empty for a refused escalation (`code: 'approval_limit'`), which created none. */
  readonly id: string;
  readonly action: ApprovalAuditEntry['action'] | 'refused';
  /** The `sub` of who acted (or tried to). */
  readonly by: string;
  /** The `iss` of who acted, when that principal had one. */
  readonly iss?: string;
  readonly at: number;
  readonly reason?: string;
  readonly path: string;
  readonly actionHash: string;
  /**
   * For `refused`: why (`approval_mismatch`, `approval_already_used`, ... for a use; `approval_limit` or
   * `approval_store_full` for an escalation that created no request).
   */
  readonly code?: string;
}
