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
 * Builds a function that walks a value once and refuses what a JSON Schema validator should never see:
 * values JSON cannot hold, objects that are not plain, forbidden keys, and anything past the limits.
 * Returns the first problem and where it is.
 *
 * One pass, no allocation on a clean value: the node count travels through the return values (so a
 * getter that runs a nested check cannot reset it), and the path of a problem is only built while the
 * recursion unwinds. The order of the tests per value is part of the contract (it decides which problem
 * is reported): node count, then type, then depth, then size, then each key before its value.
 */
export function createInspector(limits: InputLimits): (value: unknown) => FieldError | undefined {
  const { maxDepth, maxStringLength, maxArrayLength, maxObjectKeys, maxNodes } = limits;
  const forbidden = new Set(limits.forbiddenKeys);
  // The forbidden keys by length: most keys are ruled out by their length alone, the others by comparing
  // them with the few forbidden keys of the same length; only keys of 64 characters or more are hashed.
  const byLength: (string[] | undefined)[] = new Array(64).fill(undefined);
  for (const k of forbidden) {
    if (k.length < byLength.length) byLength[k.length] = [...(byLength[k.length] ?? []), k];
  }
  const isForbidden = (k: string): boolean => {
    if (k.length >= byLength.length) return forbidden.has(k);
    const same = byLength[k.length];
    if (same === undefined) return false;
    for (let i = 0; i < same.length; i++) if (same[i] === k) return true;
    return false;
  };
  // Written only on a failure and read as soon as the outermost walk returns, with no user code between.
  let problem = '';
  const trail: (string | number)[] = [];

  const fail = (message: string): -1 => {
    problem = message;
    return -1;
  };

  /** Counts and checks one value; returns the node count so far, or -1 with `problem` set. */
  const value = (v: unknown, depth: number, n: number): number => {
    if (n >= maxNodes) return fail(`holds more than ${maxNodes} values`);
    switch (typeof v) {
      case 'string':
        return v.length <= maxStringLength ? n + 1 : fail(`is longer than ${maxStringLength} characters`);
      case 'number':
        return Number.isFinite(v) ? n + 1 : fail('is not a finite number');
      case 'boolean':
        return n + 1;
      case 'object':
        return v === null ? n + 1 : container(v, depth, n + 1);
      default:
        return fail(`is not a JSON value (${typeof v})`);
    }
  };

  const container = (v: object, depth: number, n: number): number => {
    if (depth >= maxDepth) return fail(`is nested deeper than ${maxDepth} levels`);
    if (Array.isArray(v)) {
      if (v.length > maxArrayLength) return fail(`has more than ${maxArrayLength} items`);
      for (let i = 0; i < v.length; i++) {
        n = value(v[i], depth + 1, n);
        if (n < 0) {
          trail.push(i);
          return -1;
        }
      }
      return n;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return fail('is not a plain JSON object');
    // for...in, like ajv's own loops, and no key array; the prototype is Object.prototype or null here.
    let count = 0;
    for (const k in v) {
      if (++count > maxObjectKeys) return fail(`has more than ${maxObjectKeys} keys`);
      n = isForbidden(k)
        ? fail('is a forbidden key')
        : k.length > maxStringLength
          ? fail(`is a key longer than ${maxStringLength} characters`)
          : value((v as Record<string, unknown>)[k], depth + 1, n);
      if (n < 0) {
        trail.push(k);
        return -1;
      }
    }
    return n;
  };

  return (input) => {
    if (value(input, 0, 0) >= 0) return undefined;
    const at = pointer(trail.reverse());
    trail.length = 0;
    return { path: at, message: `${at === '' ? 'the value' : at} ${problem}` };
  };
}
