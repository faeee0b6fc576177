import { jsonEqual } from './conditions.js';
import type { Contract, PermissionChange, ResolvedBudget, ResolvedTool } from './types.js';

const APPROVAL_RANK = { never: 0, when: 1, always: 2 } as const;

function budgetName(b: ResolvedBudget): string {
  return `${b.effect !== undefined ? `budget "${b.effect}"` : `budget on calls of "${b.tool}"`} per ${b.per}`;
}

function budgetLabel(b: ResolvedBudget): string {
  return `${b.limit} per ${b.window}${typeof b.window === 'number' ? 's' : ''}`;
}

function diffTool(
  role: string,
  name: string,
  a: ResolvedTool,
  b: ResolvedTool,
  out: PermissionChange[],
): void {
  const push = (kind: PermissionChange['kind'], message: string) =>
    out.push({ role, kind, message: `tool "${name}": ${message}` });
  if (!jsonEqual(a.input, b.input)) push('changed', 'input schema changed');
  if (!jsonEqual(a.output ?? null, b.output ?? null)) {
    push(
      b.output === undefined ? 'widened' : 'changed',
      b.output === undefined ? 'output schema removed' : 'output schema changed',
    );
  }
  const ra = APPROVAL_RANK[a.approval.mode];
  const rb = APPROVAL_RANK[b.approval.mode];
  if (ra !== rb) {
    push(rb < ra ? 'widened' : 'narrowed', `approval ${a.approval.mode} -> ${b.approval.mode}`);
  } else if (a.approval.mode !== 'never' && b.approval.mode !== 'never') {
    const aa = a.approval;
    const bb = b.approval;
    if (aa.mode === 'when' && bb.mode === 'when' && !jsonEqual(aa.when, bb.when))
      push('changed', 'approval conditions changed');
    const added = bb.approvers.filter((x) => !aa.approvers.includes(x));
    const removed = aa.approvers.filter((x) => !bb.approvers.includes(x));
    if (added.length) push('widened', `approvers added: ${added.join(', ')}`);
    if (removed.length) push('narrowed', `approvers removed: ${removed.join(', ')}`);
    const ta = aa.ttl_seconds ?? 900;
    const tb = bb.ttl_seconds ?? 900;
    if (ta !== tb) push(tb > ta ? 'widened' : 'narrowed', `approval ttl_seconds ${ta} -> ${tb}`);
  }
  for (const effect of new Set([...Object.keys(a.effects), ...Object.keys(b.effects)])) {
    const ca = a.effects[effect];
    const cb = b.effects[effect];
    if (jsonEqual(ca ?? null, cb ?? null)) continue;
    if (cb === undefined) push('widened', `no longer counts effect "${effect}"`);
    else if (ca === undefined) push('narrowed', `now counts effect "${effect}"`);
    else if (typeof ca === 'number' && typeof cb === 'number') {
      push(cb < ca ? 'widened' : 'narrowed', `cost of effect "${effect}" ${ca} -> ${cb}`);
    } else push('changed', `cost of effect "${effect}" changed`);
  }
}

function diffBudgets(
  role: string,
  a: readonly ResolvedBudget[],
  b: readonly ResolvedBudget[],
  out: PermissionChange[],
): void {
  const id = (x: ResolvedBudget) => `${x.effect ?? ''}|${x.tool ?? ''}|${x.per}|${x.windowMs}`;
  const subject = (x: ResolvedBudget) => `${x.effect ?? ''}|${x.tool ?? ''}|${x.per}`;
  const restA = a.filter((x) => !b.some((y) => id(x) === id(y)));
  const restB = b.filter((y) => !a.some((x) => id(x) === id(y)));
  for (const x of a) {
    const y = b.find((z) => id(z) === id(x));
    if (y && y.limit !== x.limit) {
      out.push({
        role,
        kind: y.limit > x.limit ? 'widened' : 'narrowed',
        message: `${budgetName(x)}: ${budgetLabel(x)} -> ${budgetLabel(y)}`,
      });
    }
  }
  for (const x of restA) {
    const sameA = restA.filter((z) => subject(z) === subject(x));
    const sameB = restB.filter((z) => subject(z) === subject(x));
    const y = sameA.length === 1 && sameB.length === 1 ? sameB[0]! : undefined;
    if (y) {
      const rateA = x.limit / x.windowMs;
      const rateB = y.limit / y.windowMs;
      const kind = rateB > rateA ? 'widened' : rateB < rateA ? 'narrowed' : 'changed';
      out.push({ role, kind, message: `${budgetName(x)}: ${budgetLabel(x)} -> ${budgetLabel(y)}` });
      restB.splice(restB.indexOf(y), 1);
    } else out.push({ role, kind: 'widened', message: `${budgetName(x)} removed (was ${budgetLabel(x)})` });
  }
  for (const y of restB)
    out.push({ role, kind: 'narrowed', message: `${budgetName(y)} added (${budgetLabel(y)})` });
}

/**
 * Lists the permission changes from one set of contracts to another, for code review: roles and tools
 * added or removed, approvals dropped or added, budgets raised, lowered, added or removed, schemas changed,
 * and a permission change without a version bump. Sorted by role, in a stable order.
 *
 * @example
 * ```ts
 * import { diffContracts, loadContracts } from '@amas/contracts';
 * const before = loadContracts({ paths: ['old/'] }).contracts;
 * const after = loadContracts({ paths: ['contracts/'] }).contracts;
 * for (const c of diffContracts(before, after)) console.log(`${c.kind} ${c.role}: ${c.message}`);
 * ```
 */
export function diffContracts(before: readonly Contract[], after: readonly Contract[]): PermissionChange[] {
  const out: PermissionChange[] = [];
  const a = new Map(before.map((c) => [c.name, c]));
  const b = new Map(after.map((c) => [c.name, c]));
  const names = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const role of names) {
    const ca = a.get(role);
    const cb = b.get(role);
    if (!ca) {
      out.push({
        role,
        kind: 'widened',
        message: `role added with tools: ${Object.keys(cb!.tools).sort().join(', ') || '(none)'}`,
      });
      continue;
    }
    if (!cb) {
      out.push({ role, kind: 'narrowed', message: 'role removed' });
      continue;
    }
    const start = out.length;
    const tools = [...new Set([...Object.keys(ca.tools), ...Object.keys(cb.tools)])].sort();
    for (const t of tools) {
      const ta = Object.hasOwn(ca.tools, t) ? ca.tools[t] : undefined;
      const tb = Object.hasOwn(cb.tools, t) ? cb.tools[t] : undefined;
      if (!ta)
        out.push({
          role,
          kind: 'widened',
          message: `tool "${t}" added${tb!.approval.mode === 'never' ? '' : ` (approval ${tb!.approval.mode})`}`,
        });
      else if (!tb) out.push({ role, kind: 'narrowed', message: `tool "${t}" removed` });
      else diffTool(role, t, ta, tb, out);
    }
    diffBudgets(role, ca.budgets, cb.budgets, out);
    if (out.length > start && ca.version === cb.version) {
      out.push({
        role,
        kind: 'changed',
        message: `permissions changed but the version stayed ${cb.version}`,
      });
    }
  }
  return out;
}
