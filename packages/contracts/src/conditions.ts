import type { Condition } from './format.js';

const MISSING = Symbol('missing');
const hasOwn = Object.prototype.hasOwnProperty;

/** Follows own properties of plain objects only: arrays, inherited keys and non-objects end the path. */
function lookup(input: unknown, path: readonly string[]): unknown {
  let value = input;
  for (const key of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return MISSING;
    if (!hasOwn.call(value, key)) return MISSING;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** Deep equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(
    (k) =>
      hasOwn.call(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

/**
 * Evaluates one approval condition against a tool input, with the semantics of `docs/role-data.md`:
 * a missing field or a value of the wrong type does not match, except for `exists: false`.
 */
export function conditionMatches(condition: Condition, path: readonly string[], input: unknown): boolean {
  const v = lookup(input, path);
  if (condition.op === 'exists') return condition.value ? v !== MISSING : v === MISSING;
  if (v === MISSING) return false;
  switch (condition.op) {
    case 'equals':
      return jsonEqual(v, condition.value);
    case 'not_equals':
      return !jsonEqual(v, condition.value);
    case 'in':
      return condition.value.some((x) => jsonEqual(v, x));
    case 'not_in':
      return !condition.value.some((x) => jsonEqual(v, x));
    case 'prefix':
      return typeof v === 'string' && v.startsWith(condition.value);
    case 'contains':
      if (typeof v === 'string') return typeof condition.value === 'string' && v.includes(condition.value);
      return Array.isArray(v) && v.some((x) => jsonEqual(x, condition.value));
    case 'gt':
      return typeof v === 'number' && v > condition.value;
    case 'gte':
      return typeof v === 'number' && v >= condition.value;
    case 'lt':
      return typeof v === 'number' && v < condition.value;
    case 'lte':
      return typeof v === 'number' && v <= condition.value;
  }
}

/** Compiles the `when` list of an approval rule: true when any condition matches. */
export function compileWhen(conditions: readonly Condition[]): (input: unknown) => boolean {
  const compiled = conditions.map((c) => ({ c, path: c.field.split('.') }));
  return (input) => compiled.some(({ c, path }) => conditionMatches(c, path, input));
}

/** Reads an integer cost from the input at a dot path, or undefined when absent. */
export function readPath(input: unknown, path: readonly string[]): unknown {
  const v = lookup(input, path);
  return v === MISSING ? undefined : v;
}
