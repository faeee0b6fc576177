import type { Ajv } from 'ajv';
import { jsonEqual } from './conditions.js';
import type { ContractIssue } from './errors.js';
import { type ContractDocument, contractSchema, windowMs } from './format.js';
import { predefinedSources } from './predefined.js';
import { type ContractSource, formatPath, readContractFiles } from './read.js';
import { compileSchema, createAjv } from './schemas.js';
import type { Contract, LoadContractsOptions, ResolvedBudget, ResolvedTool } from './types.js';

const DEFAULT_TTL_SECONDS = 900;

/** What to load: files and directories, and contracts given as objects. */
export interface LoadInput {
  readonly paths?: readonly string[];
  readonly contracts?: readonly unknown[];
  /** Contracts a loaded contract may extend without being loaded itself (the predefined roles). */
  readonly bases?: () => readonly ContractSource[];
}

interface Parsed {
  readonly doc: ContractDocument;
  readonly source: ContractSource;
}

function copy(value: unknown): unknown {
  try {
    return structuredClone(value);
  } catch {
    return value; // not cloneable (a function inside): the format check refuses it anyway
  }
}

/** Resolved contracts are shared by the registry, its verdicts and its callers: nobody may change them. */
function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}

/** The identity of a budget: two budgets with the same one must agree on the limit. */
function budgetId(b: ResolvedBudget): string {
  return `${b.effect !== undefined ? `effect ${b.effect}` : `tool ${b.tool}`} per ${b.per} per ${b.windowMs}ms`;
}

function issueAt(source: ContractSource, path: readonly PropertyKey[], message: string): ContractIssue {
  const pos = source.locate?.(path);
  return {
    file: source.file,
    path: formatPath(path),
    ...(pos ? { line: pos.line, column: pos.column } : {}),
    message,
  };
}

function ownTools(doc: ContractDocument): Record<string, ResolvedTool> {
  const tools: Record<string, ResolvedTool> = Object.create(null);
  for (const [name, t] of Object.entries(doc.tools ?? {})) {
    const approval =
      t.approval === undefined || t.approval.mode === 'never'
        ? { mode: 'never' as const }
        : { ...t.approval, ttl_seconds: t.approval.ttl_seconds ?? DEFAULT_TTL_SECONDS };
    tools[name] = {
      name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      input: t.input,
      ...(t.output !== undefined ? { output: t.output } : {}),
      approval,
      effects: { ...t.effects },
    };
  }
  return tools;
}

function ownBudgets(doc: ContractDocument): ResolvedBudget[] {
  return (doc.budgets ?? []).map((b) => ({
    ...(b.effect !== undefined ? { effect: b.effect } : {}),
    ...(b.tool !== undefined ? { tool: b.tool } : {}),
    limit: b.limit,
    window: b.window,
    windowMs: windowMs(b.window),
    per: b.per ?? 'principal',
  }));
}

function parse(sources: readonly ContractSource[], issues: ContractIssue[]): Parsed[] {
  const out: Parsed[] = [];
  for (const source of sources) {
    const r = contractSchema.safeParse(source.data);
    if (r.success) out.push({ doc: r.data, source });
    else for (const i of r.error.issues) issues.push(issueAt(source, i.path, i.message));
  }
  return out;
}

/** Checks what the format alone cannot: the contract's own schemas compile and its budgets are distinct. */
function checkOwn(p: Parsed, ajv: Ajv | undefined, issues: ContractIssue[]): boolean {
  const before = issues.length;
  if (ajv) {
    for (const [name, t] of Object.entries(p.doc.tools ?? {})) {
      for (const which of ['input', 'output'] as const) {
        if (t[which] === undefined) continue;
        const at = ['tools', name, which];
        if (!ajv.validateSchema(t[which] as object)) {
          const seen = new Set<string>();
          for (const e of ajv.errors ?? []) {
            if (seen.has(e.instancePath)) continue;
            seen.add(e.instancePath);
            const sub = e.instancePath
              .split('/')
              .slice(1)
              .map((x) => x.replace(/~1/g, '/').replace(/~0/g, '~'));
            issues.push(issueAt(p.source, [...at, ...sub], `invalid JSON Schema: ${e.message ?? 'invalid'}`));
          }
          continue;
        }
        const r = compileSchema(ajv, t[which]);
        if (typeof r === 'string') issues.push(issueAt(p.source, at, `invalid JSON Schema: ${r}`));
      }
    }
  }
  const seen = new Map<string, number>();
  ownBudgets(p.doc).forEach((b, i) => {
    const id = budgetId(b);
    const first = seen.get(id);
    if (first !== undefined)
      issues.push(issueAt(p.source, ['budgets', i], `repeats budgets[${first}] (${id})`));
    else seen.set(id, i);
  });
  return issues.length === before;
}

/**
 * The loader behind {@link loadContracts} and the registry: loads contracts from files, directories and
 * objects, merges bases, and checks everything a CI run should catch: the format, duplicate names,
 * unknown or cyclic bases, conflicts with a base (errors, never silent merges), budgets on unknown tools
 * or on effects no tool has, and JSON Schemas that do not compile.
 * Collects every problem rather than stopping at the first. Abstract contracts serve as bases only.
 */
export function collectContracts(
  input: LoadInput,
  ajv?: Ajv,
): { contracts: Contract[]; issues: ContractIssue[] } {
  const issues: ContractIssue[] = [];
  const { sources, issues: readIssues } = readContractFiles(input.paths ?? []);
  issues.push(...readIssues);
  // Contracts given as objects are copied, so that freezing them below never freezes the caller's objects.
  for (const c of input.contracts ?? []) sources.push({ data: copy(c) });

  const parsed = parse(sources, issues);
  const byName = new Map<string, Parsed>();
  const valid = new Set<Parsed>();
  for (const p of parsed) {
    const other = byName.get(p.doc.name);
    if (other) {
      issues.push(
        issueAt(
          p.source,
          ['name'],
          `duplicate contract "${p.doc.name}"${other.source.file ? ` (also in ${other.source.file})` : ''}`,
        ),
      );
      continue;
    }
    byName.set(p.doc.name, p);
    if (checkOwn(p, ajv, issues)) valid.add(p);
  }

  let baseDocs: Map<string, Parsed> | undefined;
  const findBase = (name: string): Parsed | undefined => {
    const local = byName.get(name);
    if (local) return local;
    if (!input.bases) return undefined;
    if (!baseDocs) {
      baseDocs = new Map();
      for (const p of parse(input.bases(), [])) {
        baseDocs.set(p.doc.name, p);
        valid.add(p);
      }
    }
    return baseDocs.get(name);
  };

  const resolved = new Map<Parsed, Contract | null>();
  const resolve = (p: Parsed, stack: readonly Parsed[]): Contract | null => {
    const done = resolved.get(p);
    if (done !== undefined) return done;
    const tools = ownTools(p.doc);
    const budgets = ownBudgets(p.doc);
    let chain: string[] = [];
    let ok = true;
    if (p.doc.extends !== undefined) {
      const baseName = p.doc.extends;
      const base = findBase(baseName);
      let baseContract: Contract | null = null;
      if (!base) issues.push(issueAt(p.source, ['extends'], `unknown contract "${baseName}"`));
      else if (base === p || stack.includes(base)) {
        issues.push(issueAt(p.source, ['extends'], `"${baseName}" extends this contract again (a cycle)`));
      } else {
        baseContract = resolve(base, [...stack, p]);
        if (!baseContract) issues.push(issueAt(p.source, ['extends'], `"${baseName}" is invalid`));
      }
      if (!baseContract) ok = false;
      else {
        chain = [baseName, ...baseContract.extends];
        for (const [name, tool] of Object.entries(baseContract.tools)) {
          const own = Object.hasOwn(tools, name) ? tools[name] : undefined;
          if (own && !jsonEqual(own, tool)) {
            issues.push(
              issueAt(
                p.source,
                ['tools', name],
                `conflicts with the definition inherited from "${baseName}"`,
              ),
            );
            ok = false;
          } else tools[name] = tool;
        }
        const ownIds = new Map(budgets.map((b, i) => [budgetId(b), i]));
        for (const b of baseContract.budgets) {
          const i = ownIds.get(budgetId(b));
          if (i === undefined) budgets.push(b);
          else if (budgets[i]!.limit !== b.limit) {
            issues.push(
              issueAt(
                p.source,
                ['budgets', i],
                `limit ${budgets[i]!.limit} conflicts with ${b.limit} inherited from "${baseName}"`,
              ),
            );
            ok = false;
          }
        }
      }
    }
    (p.doc.budgets ?? []).forEach((b, i) => {
      if (b.tool !== undefined && !Object.hasOwn(tools, b.tool)) {
        issues.push(issueAt(p.source, ['budgets', i, 'tool'], `the contract has no tool "${b.tool}"`));
        ok = false;
      }
      if (b.effect !== undefined && !Object.values(tools).some((t) => Object.hasOwn(t.effects, b.effect!))) {
        issues.push(
          issueAt(p.source, ['budgets', i, 'effect'], `no tool of the contract has the effect "${b.effect}"`),
        );
        ok = false;
      }
    });
    const contract: Contract | null =
      ok && valid.has(p)
        ? {
            name: p.doc.name,
            version: p.doc.version,
            description: p.doc.description,
            extends: chain,
            tools,
            budgets,
            ...(p.source.file !== undefined ? { file: p.source.file } : {}),
          }
        : null;
    resolved.set(p, contract);
    return contract;
  };

  const contracts: Contract[] = [];
  for (const p of byName.values()) {
    const c = resolve(p, []);
    if (c && !p.doc.abstract) contracts.push(c);
  }
  contracts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const c of contracts) deepFreeze(c);
  return { contracts, issues };
}

/**
 * Loads and checks contracts without building a registry, collecting every problem instead of throwing:
 * what `amas-contracts validate` runs. Each issue has the file, the dotted path, the line and column
 * when known, and the reason. Only valid, non-abstract contracts are returned, sorted by name.
 *
 * @example
 * ```ts
 * import { loadContracts } from '@amas/contracts';
 * const { contracts, issues } = loadContracts({ paths: ['contracts/'] });
 * for (const i of issues) console.error(`${i.file}:${i.path}: ${i.message}`);
 * ```
 */
export function loadContracts(options: LoadContractsOptions): {
  contracts: Contract[];
  issues: ContractIssue[];
} {
  return collectContracts(
    {
      ...(options.paths ? { paths: options.paths } : {}),
      ...(options.contracts ? { contracts: options.contracts } : {}),
      ...(options.predefinedBases === false ? {} : { bases: predefinedSources }),
    },
    createAjv({ allErrors: true, formats: options.formats ?? 'full' }),
  );
}
