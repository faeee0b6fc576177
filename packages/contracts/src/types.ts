import type { ApprovalRule, EffectCost } from './format.js';

export type {
  ApprovalRule,
  BudgetDocument,
  Condition,
  ContractDocument,
  EffectCost,
  ToolDocument,
} from './format.js';

/** Who a budget counts for: each principal (the caller's subject) or each session. */
export type BudgetScope = 'principal' | 'session';

/** A budget after loading: what it counts, how much, over which window, for whom. */
export interface ResolvedBudget {
  /** The named effect it counts (`file.read`), or undefined when it counts calls of a tool. */
  readonly effect?: string;
  /** The tool whose calls it counts, or undefined when it counts an effect. */
  readonly tool?: string;
  readonly limit: number;
  /** The window as written (`"1h"`, or seconds as a number). */
  readonly window: string | number;
  readonly windowMs: number;
  readonly per: BudgetScope;
}

/** A tool of a resolved contract: schemas, approval rule (defaults to `never`) and effects per call. */
export interface ResolvedTool {
  readonly name: string;
  readonly description?: string;
  readonly input: unknown;
  readonly output?: unknown;
  readonly approval: ApprovalRule;
  readonly effects: Readonly<Record<string, EffectCost>>;
}

/** A role contract after its bases are merged in: what the registry enforces and `export-opa` writes. */
export interface Contract {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  /** The chain of bases, nearest first. */
  readonly extends: readonly string[];
  readonly tools: Readonly<Record<string, ResolvedTool>>;
  readonly budgets: readonly ResolvedBudget[];
  /** The file it was loaded from, when it came from a file. */
  readonly file?: string;
}

/**
 * An action to check: which role wants to call which tool with which input, and for whom.
 * Build it from verified data only (the principal from a verified token, the role from your own mapping).
 */
export interface Action {
  readonly role: string;
  readonly tool: string;
  readonly input: unknown;
  /** The caller's stable id (for example the token's `sub`); needed by budgets counted per principal. */
  readonly principal?: string;
  /** The session id; needed by budgets counted per session. */
  readonly session?: string;
  /**
   * Set only when **your code** has already verified a human approval for exactly this call (for example
   * `@amas/opa` escalated and an approver granted it). The check then answers `allowed` (and spends the
   * budget) instead of `approval_required`. Never copy this from the client's request.
   */
  readonly approval?: { readonly id: string };
}

/** Options of one check. */
export interface CheckOptions {
  /**
   * Spend the budgets when the action is allowed (default true). With `false` the check answers the same
   * verdict but only tests that every budget has room: the first half of a gateway that asks a policy
   * engine before spending (check with `spend: false`, ask OPA, then check again to spend atomically;
   * the second check can still answer `budget_exhausted` if another caller took the room meanwhile).
   */
  readonly spend?: boolean;
}

/** One readable problem with the input (or output): where, as a JSON Pointer, and what. */
export interface FieldError {
  /** JSON Pointer into the input (`/max_bytes`, `""` for the input itself). */
  readonly path: string;
  readonly message: string;
}

/** The budget that stopped an action, and when it frees up. */
export interface BudgetDenial {
  readonly effect?: string;
  readonly tool?: string;
  readonly per: BudgetScope;
  readonly limit: number;
  readonly window: string | number;
  /** What this call would have cost. */
  readonly cost: number;
  /** What was already spent in the current window. */
  readonly used: number;
  /** When the current window ends (ISO 8601). */
  readonly resetsAt: string;
  /** Whole seconds until then, at least 1 (for a `Retry-After` header). */
  readonly retryAfterSeconds: number;
}

/** What a human approval of this tool needs, copied from the contract (the same shape OPA answers). */
export interface ApprovalRequirement {
  readonly approvers: readonly string[];
  readonly ttl_seconds: number;
}

/** Every reason a check can deny. */
export type DenyCode =
  | 'role_unknown'
  | 'tool_not_allowed'
  | 'input_invalid'
  | 'action_invalid'
  | 'budget_exhausted'
  | 'approval_required'
  | 'budget_store_unavailable';

/** The action may go ahead; its budgets are already spent. */
export interface AllowedVerdict {
  readonly allowed: true;
  readonly code: 'allowed';
  readonly role: string;
  readonly tool: string;
  /** The version of the contract that decided. */
  readonly version: string;
  /** Present when the tool needed an approval and the action carried one. */
  readonly approval?: { readonly id: string };
}

/** The action must not run. Nothing was spent. */
export interface DeniedVerdict {
  readonly allowed: false;
  readonly code: DenyCode;
  /** Readable; never echoes input values. */
  readonly message: string;
  readonly role: string;
  readonly tool: string;
  /** The version of the contract that decided (absent for `role_unknown` and `action_invalid`). */
  readonly version?: string;
  /** For `input_invalid` and `action_invalid`. */
  readonly errors?: readonly FieldError[];
  /** For `budget_exhausted`. */
  readonly budget?: BudgetDenial;
  /** For `approval_required`. */
  readonly approval?: ApprovalRequirement;
}

/** The answer of {@link Registry.check}. */
export type Verdict = AllowedVerdict | DeniedVerdict;

/** The answer of {@link Registry.checkOutput}. */
export type OutputVerdict =
  | {
      readonly allowed: true;
      readonly code: 'allowed';
      readonly role: string;
      readonly tool: string;
      readonly version: string;
      /** False when the tool has no output schema (the output was passed through unchecked). */
      readonly validated: boolean;
    }
  | {
      readonly allowed: false;
      readonly code: 'output_invalid' | 'role_unknown' | 'tool_not_allowed';
      readonly message: string;
      readonly role: string;
      readonly tool: string;
      readonly version?: string;
      readonly errors?: readonly FieldError[];
    };

/** What one action asks of one budget counter. */
export interface BudgetRequest {
  /** The counter's key: {@link bucket} then the subject with `%`, `:` and braces percent-encoded. */
  readonly key: string;
  /** The budget part of the key: role, what is counted, scope, window (`{reader}:e:file.read:principal:3600000:`). */
  readonly bucket: string;
  /** The principal or session id the counter is for, as given. */
  readonly subject: string;
  readonly cost: number;
  readonly limit: number;
  readonly windowMs: number;
}

/** What a {@link BudgetStore} answers: all requests spent, or the first one that did not fit (nothing spent). */
export type BudgetOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** Index into the requests of the one that did not fit. */
      readonly index: number;
      readonly used: number;
      /** Milliseconds until that counter's window ends. */
      readonly resetInMs: number;
    };

/**
 * Where budget counters live. `consume` must be atomic: either every request fits and all are spent,
 * or none is. Windows are fixed and aligned to the epoch (`floor(now / windowMs)`).
 */
export interface BudgetStore {
  /** Spends every request if all fit, atomically; otherwise spends nothing and names the first that did not. */
  consume(requests: readonly BudgetRequest[]): BudgetOutcome | Promise<BudgetOutcome>;
  /** Answers what `consume` would, and spends nothing. */
  peek(requests: readonly BudgetRequest[]): BudgetOutcome | Promise<BudgetOutcome>;
  /** Releases timers or connections the store owns (never a client you passed in). */
  close?(): Promise<void>;
}

/**
 * The part of an ioredis client the Redis store uses. Any `ioredis` `Redis` instance fits. The keys of one
 * check share the `{role}` hash tag, so they land in one slot of a Redis Cluster (tested on a single
 * Redis only).
 */
export interface RedisLike {
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** Limits on the input and output a check accepts, before any schema runs. */
export interface InputLimits {
  /** Deepest nesting of arrays and objects. Default 32. */
  readonly maxDepth: number;
  /** Longest string, in UTF-16 code units. Default 1,048,576. */
  readonly maxStringLength: number;
  /** Most items in one array. Default 10,000. */
  readonly maxArrayLength: number;
  /** Most keys in one object. Default 1,000. */
  readonly maxObjectKeys: number;
  /** Most values in the whole input. Default 100,000. */
  readonly maxNodes: number;
  /** Keys refused anywhere in the input. Default `__proto__`, `constructor`, `prototype`. */
  readonly forbiddenKeys: readonly string[];
}

/** Options of {@link createRegistry}. */
export interface RegistryOptions {
  /** Contract documents as objects (for example `predefinedRoles()`, or parsed JSON/YAML). */
  readonly contracts?: readonly unknown[];
  /** Contract files (`.json`, `.yaml`, `.yml`) and directories of them. */
  readonly paths?: readonly string[];
  /** Where budgets are counted (default: a memory store of this registry). */
  readonly store?: BudgetStore;
  /** Longest wait for the budget store before denying with `budget_store_unavailable` (ms, default 500). */
  readonly budgetTimeoutMs?: number;
  /** Limits on inputs and outputs, checked before any schema runs (see {@link InputLimits}). */
  readonly limits?: Partial<InputLimits>;
  /** Report every failing field (default true) or only the first. */
  readonly allErrors?: boolean;
  /** `ajv-formats` mode: `full` (default), `fast`, or false. */
  readonly formats?: 'full' | 'fast' | false;
  /** Let contracts extend a predefined role they do not load themselves (default true). */
  readonly predefinedBases?: boolean;
}

/** A loaded set of role contracts, compiled once, that checks actions and outputs. */
export interface Registry {
  /**
   * Checks an action. Never throws and never rejects: every problem is a denied verdict with a stable
   * code. When allowed, the action's budgets have been spent (atomically, all or none), unless
   * `{ spend: false }` asked only whether they have room (see {@link CheckOptions}). An answer that
   * comes without waiting for a store may be a promise shared by several calls: it is frozen.
   */
  check(action: Action, options?: CheckOptions): Promise<Verdict>;
  /** Checks a tool's output against its output schema. Spends nothing. Never throws. */
  checkOutput(call: {
    readonly role: string;
    readonly tool: string;
    readonly output: unknown;
  }): OutputVerdict;
  /** The resolved contract of a role, or undefined. */
  contract(role: string): Contract | undefined;
  /** The names of the roles, sorted. */
  roles(): readonly string[];
  /** Closes the budget store when the registry created it (never a store or client you passed in). */
  close(): Promise<void>;
}

/** Options of {@link createMemoryBudgetStore}. */
export interface MemoryBudgetStoreOptions {
  /**
   * Most counters kept at once (default 100,000). When full and no window has ended, `consume` fails
   * (the check denies with `budget_store_unavailable`): forgetting a counter would hand its budget back.
   */
  readonly maxKeys?: number;
  /** The clock, in epoch milliseconds (default `Date.now`); tests move it. */
  readonly now?: () => number;
}

/** Options of {@link createRedisBudgetStore}. */
export interface RedisBudgetStoreOptions {
  /** Your ioredis client (`new Redis(url)`); the store never closes it. */
  readonly client: RedisLike;
  /** Prefix of every key (default `amas:contracts:`). Keep braces out of it: they would pick the cluster slot. */
  readonly prefix?: string;
}

/** Options of {@link loadContracts}. */
export interface LoadContractsOptions {
  /** Contract files (`.json`, `.yaml`, `.yml`) and directories of them (walked, sorted). */
  readonly paths?: readonly string[];
  /** Contract documents as objects. */
  readonly contracts?: readonly unknown[];
  /** Let contracts extend a predefined role they do not load themselves (default true). */
  readonly predefinedBases?: boolean;
  /** `ajv-formats` mode used to compile the schemas: `full` (default), `fast`, or false. */
  readonly formats?: 'full' | 'fast' | false;
}

/**
 * One permission change between two sets of contracts. `widened` gives a role more than before (a tool,
 * a higher limit, an approval dropped), `narrowed` gives it less, `changed` needs a reviewer to judge
 * (a schema, an approval condition, a version left as it was).
 */
export interface PermissionChange {
  readonly role: string;
  readonly kind: 'widened' | 'narrowed' | 'changed';
  readonly message: string;
}

/** The role data document that the Rego policy reads (see `docs/role-data.md`). */
export interface RoleData {
  readonly amas: {
    readonly roles: Readonly<
      Record<
        string,
        {
          readonly version: string;
          readonly description: string;
          readonly tools: Readonly<Record<string, { readonly approval: Readonly<Record<string, unknown>> }>>;
        }
      >
    >;
  };
}

/** The names of the predefined roles that ship with the package. */
export type PredefinedRole = 'admin' | 'code_reviewer' | 'orchestrator' | 'security_auditor';

/** How an adapter finds the parts of an action in a request (`Req` is Express's `req` or Koa's `ctx`). */
export interface GuardOptions<Req> {
  /** The caller's role, from verified data (for example a claim of the principal `@amas/oidc` put there). */
  readonly role: (req: Req) => string | undefined;
  /** The tool; default: the `:tool` route parameter. */
  readonly tool?: (req: Req) => string | undefined;
  /** The tool input; default: the parsed JSON body. */
  readonly input?: (req: Req) => unknown;
  /** The principal id for budgets; default: `amas.auth.subject`, as `@amas/oidc` sets it. */
  readonly principal?: (req: Req) => string | undefined;
  /** The session id for budgets per session; default: none. */
  readonly session?: (req: Req) => string | undefined;
  /**
   * A human approval **your code already verified** for this very call (see `Action.approval`). Never read
   * it from the client's request as it stands: a client could then approve itself.
   */
  readonly approval?: (req: Req) => { readonly id: string } | undefined;
  /** Check JSON answers against the tool's output schema before they leave (default true). */
  readonly validateOutput?: boolean;
  /**
   * Spend the budgets here (default true). With `false` the guard only checks that they have room, lets
   * a call that awaits a human approval through to your policy step, and leaves the spending (and the
   * final approval check, and the output check) to `spendBudget()` placed after that step.
   */
  readonly spend?: boolean;
}

/** Options of `spendBudget()`, the second half of a guard created with `spend: false`. */
export interface SpendOptions<Req> {
  /** A human approval your policy step verified for this very call (for example from `@amas/opa`). */
  readonly approval?: (req: Req) => { readonly id: string } | undefined;
  /** Check JSON answers against the tool's output schema before they leave (default true). */
  readonly validateOutput?: boolean;
}
