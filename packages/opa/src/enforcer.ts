import { SpanStatusCode, trace } from '@opentelemetry/api';
import { type Approvals, type ApprovalsOptions, createApprovals } from './approvals.js';
import { type BreakerState, createBreaker } from './breaker.js';
import { createDecisionCache } from './cache.js';
import { createOpaClient, normalizePath, type OpaClient } from './client.js';
import { isOpaError } from './errors.js';
import { canonicalJson, sha256 } from './hash.js';
import { readResult } from './interpret.js';
import { enforcerOptionsSchema, parseOptions } from './options.js';
import { isValidPrincipal } from './principal.js';
import { swallow } from './swallow.js';
import { toolAccessInput } from './tool-access.js';
import type {
  Authorization,
  AuthorizeRequest,
  DecideOptions,
  Decision,
  DecisionLogEvent,
  HealthStatus,
  OpaResponse,
  Provenance,
  ToolAccessRequest,
  UnavailableCause,
  UnavailableDecision,
} from './types.js';

/**
 * Options of {@link createEnforcer}.
 *
 * @example
 * ```ts
 * const options: EnforcerOptions = { url: 'http://127.0.0.1:8181', timeoutMs: 200, cache: false };
 * ```
 */
export interface EnforcerOptions {
  /** OPA's base URL, for example `http://127.0.0.1:8181`. Give this or `client`. */
  url?: string;
  /** A client from {@link createOpaClient}, instead of `url` and the client options below. */
  client?: OpaClient;
  /** Deadline per decision, retries included. Default 250 ms. */
  timeoutMs?: number;
  /** Retries on a refused/reset connection or a 502/503/504, within the deadline. Default 1. */
  retries?: number;
  /** First backoff between retries, doubled each time. Default 10 ms. */
  retryBackoffMs?: number;
  /** Extra headers for OPA (not `authorization`: use `token`). */
  headers?: Record<string, string>;
  /** Bearer token for OPA's `--authentication=token`, or a function that returns it. */
  token?: string | (() => string | Promise<string>);
  /** Answers larger than this are refused unparsed. Default 256 KiB. */
  maxResponseBytes?: number;
  /** Ask OPA for provenance (version, bundle revisions) with every decision. Default false. */
  provenance?: boolean;
  /** Keep-alive sockets to OPA. Default 64. */
  maxSockets?: number;
  /** Extra CA certificate(s) for an https OPA. */
  ca?: string | Buffer;
  /** Circuit breaker, or `false`. Default `{ failureThreshold: 5, openMs: 1000 }`. */
  breaker?: false | { failureThreshold?: number; openMs?: number };
  /** Decision cache, or `false`. Default `{ ttlMs: 1000, maxEntries: 10000 }`. Unavailable results are never cached. */
  cache?: false | { ttlMs?: number; maxEntries?: number };
  /** Concurrent identical queries share one OPA request. Default true. */
  coalesce?: boolean;
  /** Path of the tool-access decision. Default `amas/tool_access/decision`. */
  toolAccessPath?: string;
  /** The approval workflow (from {@link createApprovals}) or its options. Default: in memory. */
  approvals?: Approvals | ApprovalsOptions;
  /** Decision-log hook: one event per decision, with OPA's decision-log fields. */
  decisionLog?: {
    onDecision: (event: DecisionLogEvent) => void;
    /** Put the policy input in each event (it may hold personal data). Default false. */
    includeInput?: boolean;
    labels?: Record<string, string>;
    requestedBy?: string;
  };
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * Asks OPA for decisions and turns every failure into a denial: the core of `@amas/opa`.
 *
 * @example
 * ```ts
 * const enforcer = createEnforcer({ url: 'http://127.0.0.1:8181' });
 * const d = await enforcer.checkToolAccess({ agentRole: 'code_reviewer', toolName: 'read_file' });
 * if (d.allowed) await readFile();
 * ```
 */
export interface Enforcer {
  /** Any Data API path: `true`/`false` or a decision object `{ allow, escalate?, reasons?, approval? }`. */
  decide(path: string, input: unknown, options?: DecideOptions): Promise<Decision>;
  /** The shipped tool-access policy (allow, deny with reasons, or escalate with approvers and TTL). */
  checkToolAccess(request: ToolAccessRequest, options?: DecideOptions): Promise<Decision>;
  /** Decision plus the approval workflow: creates an approval on escalate, consumes one on retry. */
  authorize(request: AuthorizeRequest): Promise<Authorization>;
  /** OPA's `/health` (with `bundles: true` by default). */
  health(options?: {
    bundles?: boolean;
    plugins?: boolean;
    excludePlugins?: string[];
  }): Promise<HealthStatus>;
  /** `closed`, `open`, `half_open`, or `disabled`. */
  breakerState(): BreakerState | 'disabled';
  readonly approvals: Approvals;
  readonly client: OpaClient;
  /** Closes idle connections to OPA. */
  close(): void;
}

const BREAKER_NEUTRAL_STATUS = new Set([400, 404]);
const TRACER_NAME = '@amas/opa';

/**
 * Creates an {@link Enforcer}. Options are validated once, here; a bad option throws {@link OpaError}
 * `config_invalid` that names it.
 *
 * @example
 * ```ts
 * const enforcer = createEnforcer({
 *   url: process.env.OPA_URL!,
 *   timeoutMs: 200,
 *   cache: { ttlMs: 2000 },
 *   approvals: { store: createRedisApprovalStore({ redis }) },
 *   decisionLog: { onDecision: (e) => logger.info(e, 'opa decision') },
 * });
 * ```
 */
export function createEnforcer(options: EnforcerOptions): Enforcer {
  const o = parseOptions(enforcerOptionsSchema, options, 'createEnforcer');
  const now = (o.now as (() => number) | undefined) ?? Date.now;
  const client: OpaClient =
    (o.client as OpaClient | undefined) ??
    createOpaClient({
      url: o.url as string,
      ...pick(options, [
        'timeoutMs',
        'retries',
        'retryBackoffMs',
        'headers',
        'token',
        'maxResponseBytes',
        'provenance',
        'maxSockets',
        'ca',
      ]),
    });
  const breaker = o.breaker === false ? undefined : createBreaker({ ...o.breaker, now });
  const cache = createDecisionCache<Decision>({
    ttlMs: o.cache === false ? 0 : o.cache.ttlMs,
    maxEntries: o.cache === false ? 1 : o.cache.maxEntries,
    now,
  });
  const approvals: Approvals =
    o.approvals !== undefined && typeof (o.approvals as Approvals).consume === 'function'
      ? (o.approvals as Approvals)
      : createApprovals({ now, ...((o.approvals as ApprovalsOptions | undefined) ?? {}) });
  const log = o.decisionLog
    ? Object.freeze({
        onDecision: o.decisionLog.onDecision as (e: DecisionLogEvent) => void,
        includeInput: o.decisionLog.includeInput,
        labels: Object.freeze({ ...o.decisionLog.labels }),
        requestedBy: o.decisionLog.requestedBy,
      })
    : undefined;
  const toolAccessPath = o.toolAccessPath;
  const coalesce = o.coalesce;
  const tracer = trace.getTracer(TRACER_NAME);

  function unavailable(path: string, cause: UnavailableCause, retryAfterMs = 1_000): UnavailableDecision {
    return Object.freeze({
      outcome: 'unavailable',
      allowed: false,
      cached: false,
      path,
      reasons: Object.freeze(['policy_unavailable']) as readonly ['policy_unavailable'],
      cause,
      retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1_000)),
    });
  }

  async function ask(path: string, inputJson: string, objectOnly: boolean): Promise<Decision> {
    const ticket = breaker?.acquire();
    if (ticket && !ticket.ok) {
      return unavailable(
        path,
        { kind: 'breaker_open', message: 'OPA kept failing; the circuit breaker is open' },
        ticket.retryAfterMs,
      );
    }
    let r: OpaResponse;
    try {
      r = await client.evaluateJson(path, inputJson);
    } catch (err) {
      // A client that throws must still release a half-open probe, or the breaker would stay shut.
      r = {
        ok: false,
        cause: { kind: 'malformed', message: err instanceof Error ? err.message : 'client error' },
      };
    }
    if (!r.ok) {
      if (r.cause.kind === 'http_error' && BREAKER_NEUTRAL_STATUS.has(r.cause.status ?? 0))
        breaker?.success();
      else breaker?.failure();
      return unavailable(path, r.cause);
    }
    const common = {
      path,
      cached: false,
      ...(r.decisionId ? { decisionId: r.decisionId } : {}),
      ...(r.provenance ? { provenance: r.provenance as Provenance } : {}),
    };
    if (!r.defined) {
      breaker?.success();
      return Object.freeze({
        ...common,
        outcome: 'undefined',
        allowed: false,
        reasons: Object.freeze(['policy_undefined']) as readonly ['policy_undefined'],
      });
    }
    const reading = readResult(r.result, objectOnly);
    if (reading.outcome === 'invalid') {
      breaker?.failure();
      return unavailable(path, { kind: 'unexpected_result', message: reading.message });
    }
    breaker?.success();
    const reasons = Object.freeze(reading.reasons);
    if (reading.outcome === 'allow')
      return Object.freeze({ ...common, outcome: 'allow', allowed: true, reasons, result: r.result });
    if (reading.outcome === 'deny')
      return Object.freeze({ ...common, outcome: 'deny', allowed: false, reasons, result: r.result });
    return Object.freeze({
      ...common,
      outcome: 'escalate',
      allowed: false,
      reasons,
      approval: reading.approval,
      result: r.result,
    });
  }

  function emit(
    decision: Decision,
    inputJson: string,
    inputHash: string,
    started: number,
    fallback: boolean,
  ) {
    if (!log) return;
    const event: DecisionLogEvent = {
      ...(decision.decisionId ? { decision_id: decision.decisionId } : {}),
      path: decision.path,
      outcome: decision.outcome,
      reasons: decision.reasons,
      ...('result' in decision && decision.result !== undefined ? { result: decision.result } : {}),
      ...(log.includeInput ? { input: JSON.parse(inputJson) as unknown } : {}),
      input_hash: inputHash,
      ...(decision.provenance?.bundles ? { bundles: decision.provenance.bundles } : {}),
      labels: log.labels,
      ...(log.requestedBy ? { requested_by: log.requestedBy } : {}),
      timestamp: new Date(now()).toISOString(),
      cached: decision.cached,
      duration_ms: performance.now() - started,
      fallback,
      ...(decision.outcome === 'unavailable' ? { cause: decision.cause } : {}),
    };
    try {
      // A failing log sink must not change the decision, nor end the process: an async sink's
      // rejection would otherwise be unhandled.
      swallow(log.onDecision(Object.freeze(event)) as unknown);
    } catch {
      // as above, for a sink that throws
    }
  }

  async function decideJson(
    path: string,
    inputJson: string,
    objectOnly: boolean,
    opts: DecideOptions = {},
  ): Promise<Decision> {
    const started = performance.now();
    const span = tracer.startSpan('amas.opa.decide', { attributes: { 'amas.opa.path': path } });
    const inputHash = sha256(inputJson);
    const key = `${objectOnly ? 'o' : 'a'}:${path}\n${inputHash}`;
    let decision: Decision | undefined = opts.noCache ? undefined : cache.get(key);
    if (decision === undefined) {
      const load = async () => {
        const d = await ask(path, inputJson, objectOnly);
        if (d.outcome !== 'unavailable') cache.set(key, Object.freeze({ ...d, cached: true }) as Decision);
        return d;
      };
      try {
        decision = coalesce ? await cache.coalesce(key, load) : await load();
      } catch (err) {
        // ask() does not throw; this is a last line of defence that still fails closed.
        decision = unavailable(path, {
          kind: 'malformed',
          message: err instanceof Error ? err.message : 'unexpected error',
        });
      }
    }
    let fallback = false;
    if (decision.outcome === 'unavailable' && opts.fallback === 'allow') {
      fallback = true;
      decision = Object.freeze({
        outcome: 'allow',
        allowed: true,
        cached: false,
        path,
        reasons: Object.freeze(['fallback_allow']),
        fallback: decision.cause,
      });
    }
    span.setAttributes({
      'amas.opa.outcome': decision.outcome,
      'amas.opa.cache_hit': decision.cached,
      ...(decision.decisionId ? { 'amas.opa.decision_id': decision.decisionId } : {}),
      ...(decision.outcome === 'unavailable' ? { 'amas.opa.cause': decision.cause.kind } : {}),
      ...(fallback ? { 'amas.opa.fallback': true } : {}),
    });
    if (decision.outcome === 'unavailable')
      span.setStatus({ code: SpanStatusCode.ERROR, message: decision.cause.kind });
    span.end();
    emit(decision, inputJson, inputHash, started, fallback);
    return decision;
  }

  async function decide(path: string, input: unknown, opts?: DecideOptions): Promise<Decision> {
    return decideJson(normalizePath(path), canonicalJson(input), false, opts);
  }

  async function checkToolAccess(request: ToolAccessRequest, opts?: DecideOptions): Promise<Decision> {
    return decideJson(toolAccessPath, canonicalJson(toolAccessInput(request)), true, opts);
  }

  async function authorize(request: AuthorizeRequest): Promise<Authorization> {
    const principal = request.principal;
    const [path, input, objectOnly] = request.toolAccess
      ? [
          toolAccessPath,
          toolAccessInput({ ...request.toolAccess, ...(principal ? { subject: principal } : {}) }),
          true,
        ]
      : [normalizePath(request.path), request.input, false];
    const decision = await decideJson(
      path,
      canonicalJson(input),
      objectOnly,
      request.fallback ? { fallback: request.fallback } : {},
    );
    switch (decision.outcome) {
      case 'allow':
        return { outcome: 'allow', allowed: true, decision };
      case 'deny':
        return {
          outcome: 'deny',
          allowed: false,
          decision,
          reasons: decision.reasons,
          code: 'policy_denied',
        };
      case 'undefined':
        return {
          outcome: 'deny',
          allowed: false,
          decision,
          reasons: decision.reasons,
          code: 'policy_undefined',
        };
      case 'unavailable':
        return {
          outcome: 'unavailable',
          allowed: false,
          decision,
          retryAfterSeconds: decision.retryAfterSeconds,
          code: 'policy_unavailable',
        };
    }
    if (typeof principal?.sub !== 'string' || principal.sub === '') {
      return {
        outcome: 'deny',
        allowed: false,
        decision,
        reasons: ['principal_required'],
        code: 'unauthenticated',
      };
    }
    if (!isValidPrincipal(principal)) {
      // An issuer that is not a usable string is never read as "no issuer": that would match requests
      // of the same sub made without one.
      return {
        outcome: 'deny',
        allowed: false,
        decision,
        reasons: ['principal_invalid'],
        code: 'unauthenticated',
      };
    }
    try {
      if (request.approvalId !== undefined) {
        const approval = await approvals.consume(request.approvalId, { path, input, principal });
        return { outcome: 'allow', allowed: true, decision, approval };
      }
      const approval = await approvals.request({
        path,
        input,
        principal,
        ...(decision.decisionId ? { decisionId: decision.decisionId } : {}),
        approval: decision.approval,
      });
      return { outcome: 'escalate', allowed: false, decision, approval };
    } catch (err) {
      const code = isOpaError(err) ? err.code : 'approval_unavailable';
      const hint = isOpaError(err) ? Number(err.headers['retry-after']) : Number.NaN;
      const retryAfterSeconds = Number.isInteger(hint) && hint >= 1 ? hint : 1;
      if (code === 'approval_unavailable') {
        return { outcome: 'unavailable', allowed: false, decision, retryAfterSeconds, code };
      }
      if (code === 'approval_limit') {
        return { outcome: 'deny', allowed: false, decision, reasons: [code], code, retryAfterSeconds };
      }
      return { outcome: 'deny', allowed: false, decision, reasons: [code], code };
    }
  }

  return Object.freeze({
    decide,
    checkToolAccess,
    authorize,
    health: (opts = { bundles: true }) => client.health(opts),
    breakerState: () => breaker?.state() ?? 'disabled',
    approvals,
    client,
    close: () => client.close(),
  });
}

function pick<T extends object, K extends keyof T>(obj: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
