/**
 * The TypeScript twin of `policies/tool_access_policy.rego`: the same decision for the same role
 * data and input. The OPA test server evaluates it; `policies/testdata/decision_table.json` holds
 * the two equal (the Rego tests read the same table).
 */

type Json = unknown;
type Obj = Record<string, Json>;

/**
 * The tool-access decision document, as the policy answers it.
 *
 * @example
 * ```ts
 * const d: ToolAccessDecisionDocument = { allow: true, escalate: false, reasons: [] };
 * ```
 */
export interface ToolAccessDecisionDocument {
  allow: boolean;
  escalate: boolean;
  reasons: string[];
  approval?: { approvers: unknown; ttl_seconds: unknown };
}

const isObject = (v: Json): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: Obj, k: string) => Object.hasOwn(o, k);
const get = (o: Json, k: string): Json => (isObject(o) && has(o, k) ? o[k] : undefined);

/** Rego equality on JSON values: numbers by value, arrays in order, objects by key set. */
function equal(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => has(b, k) && equal(a[k], b[k]));
  }
  return false;
}

const NOT_FOUND = Symbol('not found');

function lookup(toolInput: Json, field: string): Json | typeof NOT_FOUND {
  let cur: Json = toolInput;
  for (const step of field.split('.')) {
    if (!isObject(cur) || !has(cur, step)) return NOT_FOUND;
    cur = cur[step];
  }
  return cur;
}

const EQ_OPS = new Set(['equals', 'not_equals', 'contains']);
const LIST_OPS = new Set(['in', 'not_in']);
const NUM_OPS = new Set(['gt', 'gte', 'lt', 'lte']);

function validCondition(c: Json): c is { field: string; op: string; value: Json } {
  if (!isObject(c) || typeof get(c, 'field') !== 'string' || !has(c, 'op') || !has(c, 'value')) return false;
  const { op, value } = c;
  if (typeof op !== 'string') return false;
  if (EQ_OPS.has(op)) return true;
  if (LIST_OPS.has(op)) return Array.isArray(value);
  if (op === 'prefix') return typeof value === 'string';
  if (NUM_OPS.has(op)) return typeof value === 'number';
  if (op === 'exists') return typeof value === 'boolean';
  return false;
}

function opMatches(c: { field: string; op: string; value: Json }, toolInput: Json): boolean {
  const v = lookup(toolInput, c.field);
  if (c.op === 'exists') return c.value === true ? v !== NOT_FOUND : v === NOT_FOUND;
  if (v === NOT_FOUND) return false;
  switch (c.op) {
    case 'equals':
      return equal(v, c.value);
    case 'not_equals':
      return !equal(v, c.value);
    case 'in':
      return (c.value as Json[]).some((x) => equal(x, v));
    case 'not_in':
      return !(c.value as Json[]).some((x) => equal(x, v));
    case 'prefix':
      return typeof v === 'string' && v.startsWith(c.value as string);
    case 'contains':
      if (typeof v === 'string') return typeof c.value === 'string' && v.includes(c.value);
      return Array.isArray(v) && v.some((x) => equal(x, c.value));
    case 'gt':
      return typeof v === 'number' && v > (c.value as number);
    case 'gte':
      return typeof v === 'number' && v >= (c.value as number);
    case 'lt':
      return typeof v === 'number' && v < (c.value as number);
    case 'lte':
      return typeof v === 'number' && v <= (c.value as number);
    default:
      return false;
  }
}

const MALFORMED = Symbol('malformed approval');

const conditionMatches = (c: Json, toolInput: Json) => !validCondition(c) || opMatches(c, toolInput);

const deny = (reason: string): ToolAccessDecisionDocument => ({
  allow: false,
  escalate: false,
  reasons: [reason],
});

/**
 * Evaluates the tool-access decision exactly as the shipped Rego policy does.
 * `roleData` is the role data document (`policies/roles.json`: `{ amas: { roles } }`); `input` is the
 * policy input (`{ agent_role, tool_name, input?, subject? }`).
 *
 * @example
 * ```ts
 * import roles from './policies/roles.json' with { type: 'json' };
 * evaluateToolAccess(roles, { agent_role: 'security_auditor', tool_name: 'run_pentest' });
 * // { allow: false, escalate: true, reasons: ['approval_required'], approval: { approvers: ['approvals:security'], ttl_seconds: 900 } }
 * ```
 */
export function evaluateToolAccess(roleData: unknown, input: unknown): ToolAccessDecisionDocument {
  if (!isObject(input)) return deny('input_invalid');
  const toolInput = has(input, 'input') ? input.input : {};
  if (
    typeof get(input, 'agent_role') !== 'string' ||
    typeof get(input, 'tool_name') !== 'string' ||
    !isObject(toolInput)
  ) {
    return deny('input_invalid');
  }
  const role = get(get(get(roleData, 'amas'), 'roles'), input.agent_role as string);
  if (!isObject(role)) return deny('role_unknown');
  const tools = get(role, 'tools');
  const tool = get(tools, input.tool_name as string);
  if (!isObject(tools) || !isObject(tool)) return deny('tool_not_allowed');

  const approval = get(tool, 'approval');
  // A present approval that is not an object (the string "always", null, a list) is malformed: like
  // an unknown mode, it asks for a human instead of reading as "never".
  const mode = isObject(approval)
    ? has(approval, 'mode')
      ? approval.mode
      : 'never'
    : has(tool, 'approval')
      ? MALFORMED
      : 'never';
  const when = get(approval, 'when');
  const needsApproval =
    mode === 'always' ||
    (mode !== 'never' && mode !== 'when') ||
    (mode === 'when' && !Array.isArray(when)) ||
    (mode === 'when' && Array.isArray(when) && when.some((c) => conditionMatches(c, toolInput)));
  if (!needsApproval) return { allow: true, escalate: false, reasons: [] };

  const approvers = get(approval, 'approvers');
  const ttl = get(approval, 'ttl_seconds');
  return {
    allow: false,
    escalate: true,
    reasons: ['approval_required'],
    approval: {
      approvers: Array.isArray(approvers) ? approvers : [],
      ttl_seconds: typeof ttl === 'number' && ttl > 0 ? ttl : 900,
    },
  };
}
