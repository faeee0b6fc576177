import { type Span, SpanStatusCode } from '@opentelemetry/api';
import type { ValidateFunction } from 'ajv';
import * as z from 'zod';
import { compileWhen, readPath } from './conditions.js';
import { ContractError } from './errors.js';
import { createInspector, DEFAULT_LIMITS, limitsSchema } from './limits.js';
import { collectContracts } from './load.js';
import { type CounterSlot, createMemoryBudgetStore, type MemoryCore, memoryCore } from './memory-store.js';
import { predefinedSources } from './predefined.js';
import { compileSchema, createAjv, fieldErrors } from './schemas.js';
import { contractsTracer } from './spans.js';
import type {
  Action,
  AllowedVerdict,
  ApprovalRequirement,
  BudgetOutcome,
  BudgetRequest,
  BudgetStore,
  CheckOptions,
  Contract,
  DeniedVerdict,
  DenyCode,
  FieldError,
  InputLimits,
  OutputVerdict,
  Registry,
  RegistryOptions,
  ResolvedBudget,
  Verdict,
} from './types.js';

const optionsSchema = z.strictObject({
  contracts: z.array(z.unknown(), 'contracts must be an array of contract documents').optional(),
  paths: z.array(z.string(), 'paths must be an array of file or directory names').optional(),
  store: z
    .custom<BudgetStore>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as BudgetStore).consume === 'function' &&
        typeof (v as BudgetStore).peek === 'function',
      'store must be a BudgetStore (an object with consume() and peek())',
    )
    .optional(),
  budgetTimeoutMs: z.int().min(1, 'budgetTimeoutMs must be at least 1').max(60_000).optional(),
  limits: limitsSchema.optional(),
  allErrors: z.boolean().optional(),
  formats: z.union([z.literal('full'), z.literal('fast'), z.literal(false)]).optional(),
  predefinedBases: z.boolean().optional(),
});

interface CompiledBudget {
  readonly budget: ResolvedBudget;
  /** The counter's key without the subject (`{reader}:e:file.read:principal:3600000:`). */
  readonly keyBase: string;
  readonly perSession: boolean;
  /** The cost of one call, or -1 when it is read from the input at {@link path}. */
  readonly fixed: number;
  readonly path: readonly string[];
  readonly fallback: number | undefined;
}

interface CompiledTool {
  readonly name: string;
  readonly validateInput: ValidateFunction;
  readonly validateOutput?: ValidateFunction;
  readonly needsApproval: (input: unknown) => boolean;
  readonly approval?: ApprovalRequirement;
  readonly budgets: readonly CompiledBudget[];
  /** The costs of a call when none is read from the input (else undefined). */
  readonly fixedCosts: readonly number[] | undefined;
  /** The budgets as slots of the registry's memory store, when the store is one (else undefined). */
  readonly slots: readonly CounterSlot[] | undefined;
  /** The verdict of an allowed call without an approval: the same frozen object every time. */
  readonly allowed: AllowedVerdict;
  /** {@link allowed}, already settled: the same frozen promise every time. */
  readonly settled: Promise<Verdict>;
}

interface CompiledRole {
  readonly contract: Contract;
  readonly tools: ReadonlyMap<string, CompiledTool>;
}

const MAX_ID = 512;
const KEY_UNSAFE = /[%:{}]/g;

/** Makes a principal or session id safe inside a key: `%`, `:` and braces are percent-encoded. */
function keyPart(id: string): string {
  return id.replace(KEY_UNSAFE, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A budget request whose flat `key` is only built when a store asks for it (the memory store never does). */
class CounterRequest implements BudgetRequest {
  constructor(
    readonly bucket: string,
    readonly subject: string,
    readonly cost: number,
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  get key(): string {
    return this.bucket + keyPart(this.subject);
  }
}

/** Reads `role` and `tool` from anything, without throwing (a hostile getter or proxy included). */
function names(action: unknown): { role: string; tool: string } {
  try {
    const a = action as { role?: unknown; tool?: unknown };
    return { role: typeof a.role === 'string' ? a.role : '', tool: typeof a.tool === 'string' ? a.tool : '' };
  } catch {
    return { role: '', tool: '' };
  }
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
}

function compileRole(
  contract: Contract,
  ajv: ReturnType<typeof createAjv>,
  core: MemoryCore | undefined,
): CompiledRole {
  const tools = new Map<string, CompiledTool>();
  for (const tool of Object.values(contract.tools)) {
    const compile = (schema: unknown): ValidateFunction => {
      const v = compileSchema(ajv, schema);
      if (typeof v === 'string')
        throw new ContractError('contract_invalid', `${contract.name}: ${tool.name}: ${v}`);
      return v;
    };
    const budgets: CompiledBudget[] = [];
    for (const b of contract.budgets) {
      let fixed: number;
      let path: readonly string[] = [];
      let fallback: number | undefined;
      if (b.tool === tool.name) fixed = 1;
      else if (b.effect !== undefined && Object.hasOwn(tool.effects, b.effect)) {
        const c = tool.effects[b.effect]!;
        if (typeof c === 'number') fixed = c;
        else {
          fixed = -1;
          path = c.input.split('.');
          fallback = c.default;
        }
      } else continue;
      const what = b.effect !== undefined ? `e:${b.effect}` : `t:${b.tool}`;
      const keyBase = `{${contract.name}}:${what}:${b.per}:${b.windowMs}:`;
      budgets.push({ budget: b, keyBase, perSession: b.per === 'session', fixed, path, fallback });
    }
    const a = tool.approval;
    const allowed: AllowedVerdict = Object.freeze({
      allowed: true,
      code: 'allowed',
      role: contract.name,
      tool: tool.name,
      version: contract.version,
    });
    tools.set(tool.name, {
      name: tool.name,
      validateInput: compile(tool.input),
      ...(tool.output !== undefined ? { validateOutput: compile(tool.output) } : {}),
      needsApproval:
        a.mode === 'never' ? () => false : a.mode === 'always' ? () => true : compileWhen(a.when),
      ...(a.mode !== 'never'
        ? { approval: { approvers: a.approvers, ttl_seconds: a.ttl_seconds ?? 900 } }
        : {}),
      budgets,
      fixedCosts: budgets.every((cb) => cb.fixed >= 0) ? budgets.map((cb) => cb.fixed) : undefined,
      slots: core
        ? budgets.map((cb) => core.slot(cb.keyBase, cb.budget.limit, cb.budget.windowMs, cb.perSession))
        : undefined,
      allowed,
      settled: Object.freeze(Promise.resolve<Verdict>(allowed)),
    });
  }
  return { contract, tools };
}

function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/**
 * Builds a registry from contracts (objects, files or directories). Every contract is checked and every
 * JSON Schema compiled here, once; a bad contract throws a `contract_invalid` {@link ContractError} whose
 * `issues` give the file, the path and the reason of every problem. Bad options throw `config_invalid`.
 *
 * @example
 * ```ts
 * import { createRegistry, predefinedRoles } from '@amas/contracts';
 * const registry = createRegistry({ contracts: predefinedRoles(), paths: ['contracts/'] });
 * const verdict = await registry.check({
 *   role: 'code_reviewer', tool: 'read_file', input: { path: 'src/index.ts' }, principal: 'agent-42',
 * });
 * if (!verdict.allowed) console.log(verdict.code, verdict.message);
 * ```
 */
export function createRegistry(options: RegistryOptions): Registry {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success)
    throw new ContractError('config_invalid', `createRegistry: ${z.prettifyError(parsed.error)}`);
  const config = Object.freeze({
    budgetTimeoutMs: options.budgetTimeoutMs ?? 500,
    limits: Object.freeze({ ...DEFAULT_LIMITS, ...parsed.data.limits }) as InputLimits,
    allErrors: options.allErrors ?? true,
    formats: options.formats ?? 'full',
  });
  const ownsStore = options.store === undefined;
  const store = options.store ?? createMemoryBudgetStore();
  const ajv = createAjv({ allErrors: config.allErrors, formats: config.formats });
  const { contracts, issues } = collectContracts(
    {
      ...(options.paths ? { paths: options.paths } : {}),
      ...(options.contracts ? { contracts: options.contracts } : {}),
      ...(options.predefinedBases === false ? {} : { bases: predefinedSources }),
    },
    ajv,
  );
  if (issues.length > 0) {
    const lines = issues.slice(0, 10).map((i) => `${i.file ?? '(object)'}:${i.path}: ${i.message}`);
    throw new ContractError('contract_invalid', `invalid contracts:\n${lines.join('\n')}`, { issues });
  }
  // The registry's own memory store (or one passed in) is called directly, without request objects.
  const core = memoryCore(store);
  const roles = new Map<string, CompiledRole>();
  for (const c of contracts) roles.set(c.name, compileRole(c, ajv, core));
  const roleNames = Object.freeze([...roles.keys()].sort());
  const inspect = createInspector(config.limits);
  const { tracer, maybeRecording } = contractsTracer('@amas/contracts');

  const deny = (
    code: DenyCode,
    message: string,
    action: { role: unknown; tool: unknown },
    extra: Partial<DeniedVerdict> = {},
  ): DeniedVerdict => ({
    allowed: false,
    code,
    message,
    role: typeof action.role === 'string' ? action.role : '',
    tool: typeof action.tool === 'string' ? action.tool : '',
    ...extra,
  });

  const idProblem = (value: unknown, name: string): FieldError | undefined =>
    value === undefined || (typeof value === 'string' && value.length > 0 && value.length <= MAX_ID)
      ? undefined
      : { path: `/${name}`, message: `${name} must be a non-empty string of at most ${MAX_ID} characters` };

  const failed = (action: Action): Verdict =>
    deny('input_invalid', 'the action could not be read', names(action));

  const unavailable = (action: Action, version: string): Verdict =>
    deny('budget_store_unavailable', 'the budget store did not answer; try again later', action, { version });

  const exhausted = (
    action: Action,
    version: string,
    cb: CompiledBudget,
    cost: number,
    used: number,
    resetInMs: number,
  ): Verdict => {
    const b = cb.budget;
    const what = b.effect !== undefined ? `"${b.effect}"` : `calls of "${b.tool}"`;
    return deny(
      'budget_exhausted',
      `the budget of ${what} per ${b.per} is spent until its window resets`,
      action,
      {
        version,
        budget: {
          ...(b.effect !== undefined ? { effect: b.effect } : { tool: b.tool! }),
          per: b.per,
          limit: b.limit,
          window: b.window,
          cost,
          used,
          resetsAt: new Date(Date.now() + resetInMs).toISOString(),
          retryAfterSeconds: Math.max(1, Math.ceil(resetInMs / 1000)),
        },
      },
    );
  };

  /** Any store but this package's memory store: one request object per counter, maybe an answer later. */
  const askStore = (
    action: Action,
    version: string,
    tool: CompiledTool,
    costs: readonly number[],
    principal: string | undefined,
    session: string | undefined,
    spend: boolean,
    pass: Verdict,
  ): Verdict | Promise<Verdict> => {
    const requests: CounterRequest[] = [];
    const used: CompiledBudget[] = [];
    for (let i = 0; i < costs.length; i++) {
      if (costs[i] === 0) continue;
      const cb = tool.budgets[i]!;
      const subject = (cb.perSession ? session : principal) as string;
      requests.push(new CounterRequest(cb.keyBase, subject, costs[i]!, cb.budget.limit, cb.budget.windowMs));
      used.push(cb);
    }
    const settle = (o: BudgetOutcome): Verdict => {
      if (o?.ok === true) return pass;
      // A store that answers something else is broken: deny as if it were down.
      const cb = o?.ok === false && Number.isInteger(o.index) ? used[o.index] : undefined;
      if (!cb || !Number.isFinite(o.used) || !Number.isFinite(o.resetInMs))
        return unavailable(action, version);
      return exhausted(action, version, cb, requests[o.index]!.cost, o.used, o.resetInMs);
    };
    let result: ReturnType<BudgetStore['consume']>;
    try {
      result = spend ? store.consume(requests) : store.peek(requests);
    } catch {
      return unavailable(action, version);
    }
    if (!isThenable(result)) return settle(result);
    // Never rejects: `check` hands this promise out as it is.
    return bounded(result, config.budgetTimeoutMs).then(
      (o) => {
        try {
          return settle(o);
        } catch {
          return failed(action);
        }
      },
      () => {
        try {
          return unavailable(action, version);
        } catch {
          return failed(action);
        }
      },
    );
  };

  /**
   * The budgets of a call that passed every other test: every subject and cost is read first (a
   * missing one denies), then the store spends all or nothing (or, without `spend`, only looks).
   */
  const charge = (
    action: Action,
    version: string,
    tool: CompiledTool,
    input: unknown,
    principal: unknown,
    session: unknown,
    spend: boolean,
    pass: Verdict,
    passed: Verdict | Promise<Verdict>,
  ): Verdict | Promise<Verdict> => {
    const budgets = tool.budgets;
    let costs = tool.fixedCosts;
    const read: number[] | undefined = costs === undefined ? [] : undefined;
    let spends = false;
    for (let i = 0; i < budgets.length; i++) {
      const cb = budgets[i]!;
      if ((cb.perSession ? session : principal) === undefined) {
        const per = cb.budget.per;
        const message = `${per} is required: the contract counts a budget per ${per}`;
        return deny('action_invalid', message, action, { version, errors: [{ path: `/${per}`, message }] });
      }
      let cost = cb.fixed;
      if (cost < 0) {
        const v = readPath(input, cb.path);
        const c = v === undefined ? cb.fallback : v;
        if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 0) {
          const path = `/${cb.path.join('/')}`;
          const message = `${path} must be a non-negative integer: a budget counts it`;
          return deny('input_invalid', message, action, { version, errors: [{ path, message }] });
        }
        cost = c;
      }
      if (read) read.push(cost);
      if (cost !== 0) spends = true;
    }
    if (!spends) return passed;
    costs ??= read!;

    // The ids were checked above: every budget's subject is a string here.
    const p = principal as string | undefined;
    const s = session as string | undefined;
    if (!tool.slots) return askStore(action, version, tool, costs, p, s, spend, pass);
    let full: number;
    try {
      full = core!.run(tool.slots, costs, p, s, spend);
    } catch {
      return unavailable(action, version);
    }
    if (full < 0) return passed;
    return exhausted(action, version, budgets[full]!, costs[full]!, core!.used, core!.resetInMs);
  };

  // The principal, session, approval id and input are read once: a getter cannot answer one thing to
  // a test and another to the code that uses the value. A promise returned here never rejects; with
  // `shared`, an allowed verdict may come as the tool's settled promise, ready to hand out.
  const decide = (action: Action, spend: boolean, shared: boolean): Verdict | Promise<Verdict> => {
    if (typeof action !== 'object' || action === null) {
      return deny('action_invalid', 'the action must be an object', { role: '', tool: '' });
    }
    const { role: roleName, tool: toolName } = action;
    const role = typeof roleName === 'string' ? roles.get(roleName) : undefined;
    if (!role) return deny('role_unknown', 'the role has no contract', action);
    const tool = typeof toolName === 'string' ? role.tools.get(toolName) : undefined;
    const version = role.contract.version;
    if (!tool)
      return deny('tool_not_allowed', `the role "${role.contract.name}" may not call this tool`, action, {
        version,
      });

    const principal = action.principal;
    const session = action.session;
    const approval = action.approval;
    const approvalId = approval === undefined ? undefined : approval?.id;
    const badId =
      idProblem(principal, 'principal') ??
      idProblem(session, 'session') ??
      (approval === undefined ? undefined : idProblem(approvalId ?? null, 'approval/id'));
    if (badId) return deny('action_invalid', badId.message, action, { version, errors: [badId] });

    const input = action.input;
    const bad = inspect(input);
    if (bad) return deny('input_invalid', bad.message, action, { version, errors: [bad] });
    if (!tool.validateInput(input)) {
      const errors = fieldErrors(tool.validateInput.errors, 'the input');
      return deny('input_invalid', errors[0]?.message ?? 'the input is invalid', action, { version, errors });
    }

    // A call that still needs an approval is answered only after its budgets are known to have room,
    // so that no human is asked to approve a call that could not run; nothing is spent for it.
    const needsApproval = tool.needsApproval(input);
    const awaitingApproval = needsApproval && approval === undefined;
    const pass: Verdict = awaitingApproval
      ? deny('approval_required', 'a human must approve this call', action, {
          version,
          approval: tool.approval!,
        })
      : needsApproval
        ? { ...tool.allowed, approval: { id: approvalId as string } }
        : tool.allowed;
    const passed = shared && pass === tool.allowed ? tool.settled : pass;
    if (tool.budgets.length === 0) return passed;
    return charge(action, version, tool, input, principal, session, spend && !awaitingApproval, pass, passed);
  };

  const finish = (span: Span, v: Verdict): Verdict => {
    if (span.isRecording()) {
      span.setAttribute('amas.contracts.outcome', v.code);
      if (v.version !== undefined) span.setAttribute('amas.contracts.version', v.version);
      if (!v.allowed && v.budget)
        span.setAttribute('amas.contracts.budget', v.budget.effect ?? `calls.${v.budget.tool}`);
      if (v.code === 'budget_store_unavailable')
        span.setStatus({ code: SpanStatusCode.ERROR, message: v.code });
    }
    span.end();
    return v;
  };

  return Object.freeze({
    check(action: Action, options?: CheckOptions): Promise<Verdict> {
      // Without an SDK the span would be a no-op: skip it, and its clock and context reads.
      if (!maybeRecording()) {
        let v: Verdict | Promise<Verdict>;
        try {
          v = decide(action, options?.spend !== false, true);
        } catch {
          return Promise.resolve(failed(action));
        }
        return isThenable(v) ? v : Promise.resolve(v);
      }
      const span = tracer.startSpan('amas.contracts.check');
      if (span.isRecording()) {
        const n = names(action);
        span.setAttributes({ 'amas.contracts.role': clip(n.role), 'amas.contracts.tool': clip(n.tool) });
      }
      try {
        const v = decide(action, options?.spend !== false, false);
        if (!isThenable(v)) return Promise.resolve(finish(span, v));
        return v.then(
          (r) => finish(span, r),
          () => finish(span, failed(action)),
        );
      } catch {
        return Promise.resolve(finish(span, failed(action)));
      }
    },

    checkOutput(call: {
      readonly role: string;
      readonly tool: string;
      readonly output: unknown;
    }): OutputVerdict {
      const base = names(call);
      const span = tracer.startSpan('amas.contracts.check_output', {
        attributes: { 'amas.contracts.role': clip(base.role), 'amas.contracts.tool': clip(base.tool) },
      });
      let v: OutputVerdict;
      try {
        const role = roles.get(base.role);
        const tool = role?.tools.get(base.tool);
        if (!role) v = { allowed: false, code: 'role_unknown', message: 'the role has no contract', ...base };
        else if (!tool) {
          v = {
            allowed: false,
            code: 'tool_not_allowed',
            message: 'the role may not call this tool',
            ...base,
            version: role.contract.version,
          };
        } else if (!tool.validateOutput) {
          v = { allowed: true, code: 'allowed', ...base, version: role.contract.version, validated: false };
        } else {
          const bad = inspect(call.output);
          const errors = bad
            ? [bad]
            : tool.validateOutput(call.output)
              ? []
              : fieldErrors(tool.validateOutput.errors, 'the output');
          v =
            errors.length === 0
              ? { allowed: true, code: 'allowed', ...base, version: role.contract.version, validated: true }
              : {
                  allowed: false,
                  code: 'output_invalid',
                  message: errors[0]?.message ?? 'the output is invalid',
                  ...base,
                  version: role.contract.version,
                  errors,
                };
        }
      } catch {
        v = { allowed: false, code: 'output_invalid', message: 'the output could not be read', ...base };
      }
      if (span.isRecording()) span.setAttribute('amas.contracts.outcome', v.code);
      span.end();
      return v;
    },

    contract: (role: string) => (typeof role === 'string' ? roles.get(role)?.contract : undefined),
    roles: () => roleNames,
    async close() {
      if (ownsStore) await store.close?.();
    },
  });
}
