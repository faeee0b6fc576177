import { type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ValidateFunction } from 'ajv';
import * as z from 'zod';
import { compileWhen, readPath } from './conditions.js';
import { ContractError } from './errors.js';
import { createInspector, DEFAULT_LIMITS, limitsSchema } from './limits.js';
import { collectContracts } from './load.js';
import { createMemoryBudgetStore } from './memory-store.js';
import { predefinedSources } from './predefined.js';
import { compileSchema, createAjv, fieldErrors } from './schemas.js';
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

type CostSpec = { readonly fixed: number } | { readonly path: readonly string[]; readonly fallback?: number };

interface CompiledBudget {
  readonly budget: ResolvedBudget;
  readonly keyBase: string;
  readonly cost: CostSpec;
}

interface CompiledTool {
  readonly name: string;
  readonly validateInput: ValidateFunction;
  readonly validateOutput?: ValidateFunction;
  readonly needsApproval: (input: unknown) => boolean;
  readonly approval?: ApprovalRequirement;
  readonly budgets: readonly CompiledBudget[];
  /** The verdict of an allowed call without an approval: the same frozen object every time. */
  readonly allowed: AllowedVerdict;
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

function compileRole(contract: Contract, ajv: ReturnType<typeof createAjv>): CompiledRole {
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
      let cost: CostSpec | undefined;
      if (b.tool === tool.name) cost = { fixed: 1 };
      else if (b.effect !== undefined && Object.hasOwn(tool.effects, b.effect)) {
        const c = tool.effects[b.effect]!;
        cost =
          typeof c === 'number'
            ? { fixed: c }
            : {
                path: c.input.split('.'),
                ...(c.default !== undefined ? { fallback: c.default } : {}),
              };
      }
      if (!cost) continue;
      const what = b.effect !== undefined ? `e:${b.effect}` : `t:${b.tool}`;
      budgets.push({ budget: b, cost, keyBase: `{${contract.name}}:${what}:${b.per}:${b.windowMs}:` });
    }
    const a = tool.approval;
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
      allowed: Object.freeze({
        allowed: true,
        code: 'allowed',
        role: contract.name,
        tool: tool.name,
        version: contract.version,
      }),
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
  const roles = new Map<string, CompiledRole>();
  for (const c of contracts) roles.set(c.name, compileRole(c, ajv));
  const roleNames = Object.freeze([...roles.keys()].sort());
  const inspect = createInspector(config.limits);
  const tracer = trace.getTracer('@amas/contracts');

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

  const decide = (action: Action, spend: boolean): Verdict | Promise<Verdict> => {
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

    const badId =
      idProblem(action.principal, 'principal') ??
      idProblem(action.session, 'session') ??
      (action.approval === undefined ? undefined : idProblem(action.approval?.id ?? null, 'approval/id'));
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
    const awaitingApproval = needsApproval && action.approval === undefined;
    const pass: Verdict = awaitingApproval
      ? deny('approval_required', 'a human must approve this call', action, {
          version,
          approval: tool.approval!,
        })
      : needsApproval
        ? { ...tool.allowed, approval: { id: action.approval!.id } }
        : tool.allowed;
    if (tool.budgets.length === 0) return pass;
    const requests: BudgetRequest[] = [];
    const used: CompiledBudget[] = [];
    for (const cb of tool.budgets) {
      const subject = cb.budget.per === 'principal' ? action.principal : action.session;
      if (subject === undefined) {
        const message = `${cb.budget.per} is required: the contract counts a budget per ${cb.budget.per}`;
        return deny('action_invalid', message, action, {
          version,
          errors: [{ path: `/${cb.budget.per}`, message }],
        });
      }
      let cost: number;
      if ('fixed' in cb.cost) cost = cb.cost.fixed;
      else {
        const v = readPath(input, cb.cost.path);
        const c = v === undefined ? cb.cost.fallback : v;
        if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 0) {
          const path = `/${cb.cost.path.join('/')}`;
          const message = `${path} must be a non-negative integer: a budget counts it`;
          return deny('input_invalid', message, action, { version, errors: [{ path, message }] });
        }
        cost = c;
      }
      if (cost === 0) continue;
      requests.push(new CounterRequest(cb.keyBase, subject, cost, cb.budget.limit, cb.budget.windowMs));
      used.push(cb);
    }

    if (requests.length === 0) return pass;

    const unavailable = (): Verdict =>
      deny('budget_store_unavailable', 'the budget store did not answer; try again later', action, {
        version,
      });
    const settle = (o: BudgetOutcome): Verdict => {
      if (o?.ok === true) return pass;
      // A store that answers something else is broken: deny as if it were down.
      const cb = o?.ok === false && Number.isInteger(o.index) ? used[o.index] : undefined;
      if (!cb || !Number.isFinite(o.used) || !Number.isFinite(o.resetInMs)) return unavailable();
      const b = cb.budget;
      const retryAfterSeconds = Math.max(1, Math.ceil(o.resetInMs / 1000));
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
            cost: requests[o.index]!.cost,
            used: o.used,
            resetsAt: new Date(Date.now() + o.resetInMs).toISOString(),
            retryAfterSeconds,
          },
        },
      );
    };
    let result: ReturnType<BudgetStore['consume']>;
    try {
      result = spend && !awaitingApproval ? store.consume(requests) : store.peek(requests);
    } catch {
      return unavailable();
    }
    if (!isThenable(result)) return settle(result);
    return bounded(result, config.budgetTimeoutMs).then(settle, unavailable);
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

  const failed = (action: Action): Verdict =>
    deny('input_invalid', 'the action could not be read', names(action));

  return Object.freeze({
    check(action: Action, options?: CheckOptions): Promise<Verdict> {
      const span = tracer.startSpan('amas.contracts.check');
      if (span.isRecording()) {
        const n = names(action);
        span.setAttributes({ 'amas.contracts.role': clip(n.role), 'amas.contracts.tool': clip(n.tool) });
      }
      try {
        const v = decide(action, options?.spend !== false);
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
