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

/**
 * Builds a function that walks a value once and refuses what a JSON Schema validator should never see: values JSON cannot hold,
 * objects that are not plain, forbidden keys, and anything past the limits. Returns the first problem.
 */
export function createInspector(limits: InputLimits): (value: unknown) => FieldError | undefined {
  const forbidden = new Set(limits.forbiddenKeys);
  return (value) => inspectValue(value, limits, forbidden);
}

function inspectValue(
  value: unknown,
  limits: InputLimits,
  forbidden: ReadonlySet<string>,
): FieldError | undefined {
  const path: (string | number)[] = [];
  let nodes = 0;
  let problem: string | undefined;

  const walk = (v: unknown, depth: number): boolean => {
    if (++nodes > limits.maxNodes) {
      problem = `holds more than ${limits.maxNodes} values`;
      return false;
    }
    switch (typeof v) {
      case 'string':
        if (v.length > limits.maxStringLength) {
          problem = `is longer than ${limits.maxStringLength} characters`;
          return false;
        }
        return true;
      case 'number':
        if (!Number.isFinite(v)) {
          problem = 'is not a finite number';
          return false;
        }
        return true;
      case 'boolean':
        return true;
      case 'object': {
        if (v === null) return true;
        if (depth >= limits.maxDepth) {
          problem = `is nested deeper than ${limits.maxDepth} levels`;
          return false;
        }
        if (Array.isArray(v)) {
          if (v.length > limits.maxArrayLength) {
            problem = `has more than ${limits.maxArrayLength} items`;
            return false;
          }
          for (let i = 0; i < v.length; i++) {
            path.push(i);
            if (!walk(v[i], depth + 1)) return false;
            path.pop();
          }
          return true;
        }
        const proto = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) {
          problem = 'is not a plain JSON object';
          return false;
        }
        const keys = Object.keys(v);
        if (keys.length > limits.maxObjectKeys) {
          problem = `has more than ${limits.maxObjectKeys} keys`;
          return false;
        }
        for (const k of keys) {
          path.push(k);
          if (forbidden.has(k)) {
            problem = 'is a forbidden key';
            return false;
          }
          if (k.length > limits.maxStringLength) {
            problem = `is a key longer than ${limits.maxStringLength} characters`;
            return false;
          }
          if (!walk((v as Record<string, unknown>)[k], depth + 1)) return false;
          path.pop();
        }
        return true;
      }
      default:
        problem = `is not a JSON value (${typeof v})`;
        return false;
    }
  };

  if (walk(value, 0)) return undefined;
  const at = pointer(path);
  return { path: at, message: `${at === '' ? 'the value' : at} ${problem}` };
}
