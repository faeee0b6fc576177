import * as z from 'zod';
import type { FieldError, InputLimits } from './types.js';

/** The defaults of {@link InputLimits}. */
export const DEFAULT_LIMITS: InputLimits = Object.freeze({
  maxDepth: 32,
  maxStringLength: 1_048_576,
  maxArrayLength: 10_000,
  maxObjectKeys: 1_000,
  maxNodes: 100_000,
  forbiddenKeys: Object.freeze(['__proto__', 'constructor', 'prototype']),
});

export const limitsSchema = z
  .strictObject({
    maxDepth: z.int().min(1).max(1_000),
    maxStringLength: z.int().min(1),
    maxArrayLength: z.int().min(0),
    maxObjectKeys: z.int().min(0),
    maxNodes: z.int().min(1),
    forbiddenKeys: z.array(z.string()),
  })
  .partial();

/** Escapes one JSON Pointer segment (RFC 6901). */
export function pointerSegment(key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}

function pointer(path: readonly (string | number)[]): string {
  const p = path.length === 0 ? '' : `/${path.map(pointerSegment).join('/')}`;
  return p.length > 200 ? `${p.slice(0, 200)}…` : p;
}

interface Walk {
  readonly maxDepth: number;
  readonly maxStringLength: number;
  readonly maxArrayLength: number;
  readonly maxObjectKeys: number;
  readonly maxNodes: number;
  readonly forbidden: ReadonlySet<string>;
  nodes: number;
  problem: string;
  /** The path to the problem, filled while the recursion unwinds, so a clean walk never pays for it. */
  readonly trail: (string | number)[];
}

function fail(w: Walk, problem: string): false {
  w.problem = problem;
  return false;
}

function walk(v: unknown, depth: number, w: Walk): boolean {
  if (++w.nodes > w.maxNodes) return fail(w, `holds more than ${w.maxNodes} values`);
  switch (typeof v) {
    case 'string':
      return v.length <= w.maxStringLength || fail(w, `is longer than ${w.maxStringLength} characters`);
    case 'number':
      return Number.isFinite(v) || fail(w, 'is not a finite number');
    case 'boolean':
      return true;
    case 'object': {
      if (v === null) return true;
      if (depth >= w.maxDepth) return fail(w, `is nested deeper than ${w.maxDepth} levels`);
      if (Array.isArray(v)) {
        if (v.length > w.maxArrayLength) return fail(w, `has more than ${w.maxArrayLength} items`);
        for (let i = 0; i < v.length; i++) {
          if (!walk(v[i], depth + 1, w)) {
            w.trail.push(i);
            return false;
          }
        }
        return true;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return fail(w, 'is not a plain JSON object');
      // for...in, like ajv's own loops, and no key array; the prototype is Object.prototype or null here.
      let count = 0;
      for (const k in v) {
        if (++count > w.maxObjectKeys) return fail(w, `has more than ${w.maxObjectKeys} keys`);
        const ok = w.forbidden.has(k)
          ? fail(w, 'is a forbidden key')
          : k.length > w.maxStringLength
            ? fail(w, `is a key longer than ${w.maxStringLength} characters`)
            : walk((v as Record<string, unknown>)[k], depth + 1, w);
        if (!ok) {
          w.trail.push(k);
          return false;
        }
      }
      return true;
    }
    default:
      return fail(w, `is not a JSON value (${typeof v})`);
  }
}

/**
 * Builds a function that walks a value once and refuses what a JSON Schema validator should never see:
 * values JSON cannot hold, objects that are not plain, forbidden keys, and anything past the limits.
 * Returns the first problem and where it is.
 */
export function createInspector(limits: InputLimits): (value: unknown) => FieldError | undefined {
  const forbidden = new Set(limits.forbiddenKeys);
  return (value) => {
    const w: Walk = {
      maxDepth: limits.maxDepth,
      maxStringLength: limits.maxStringLength,
      maxArrayLength: limits.maxArrayLength,
      maxObjectKeys: limits.maxObjectKeys,
      maxNodes: limits.maxNodes,
      forbidden,
      nodes: 0,
      problem: '',
      trail: [],
    };
    if (walk(value, 0, w)) return undefined;
    const at = pointer(w.trail.reverse());
    return { path: at, message: `${at === '' ? 'the value' : at} ${w.problem}` };
  };
}
