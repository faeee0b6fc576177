import { createHash } from 'node:crypto';
import { OpaError } from './errors.js';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function sortKeys(_key: string, value: unknown): unknown {
  // JSON.stringify writes NaN and ±Infinity (1e400 in a JSON body) as null: the policy would judge
  // null while the tool runs with Infinity, and both would share one hash. Refuse them instead.
  if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError('non-finite number');
  if (!isPlainObject(value)) return value;
  // A null-prototype copy: a "__proto__" key from JSON.parse stays a plain own key.
  const sorted: Record<string, unknown> = Object.create(null);
  for (const k of Object.keys(value).sort()) sorted[k] = value[k];
  return sorted;
}

/**
 * Serializes a value as canonical JSON: object keys sorted at every level, so that two inputs that
 * differ only in key order give the same text (and the same cache key and approval hash).
 * Throws an {@link OpaError} `input_invalid` for values JSON cannot hold (cycles, BigInt, NaN and
 * ±Infinity, which `JSON.stringify` would silently turn into `null`).
 *
 * @example
 * ```ts
 * canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }); // '{"a":[2,{"c":4,"d":3}],"b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, sortKeys);
  } catch (err) {
    throw new OpaError('input_invalid', 'the policy input cannot be serialized as JSON', { cause: err });
  }
  // JSON.stringify(undefined) is undefined: no input at all.
  return text ?? 'null';
}

/**
 * SHA-256 (base64url) of a string.
 *
 * @example
 * ```ts
 * sha256('{"a":1}').length; // 43
 * ```
 */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/**
 * The hash that binds an approval to one action: the Data API path and the canonical input.
 *
 * @example
 * ```ts
 * actionHash('amas/tool_access/decision', canonicalJson(input));
 * ```
 */
export function actionHash(path: string, inputJson: string): string {
  return sha256(`${path}\n${inputJson}`);
}
