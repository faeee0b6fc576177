import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, sha256 } from '../src/hash.js';
import { readResult } from '../src/interpret.js';
import { evaluateToolAccess } from '../src/tool-access-policy.js';
import { roleData } from './helpers.js';

const roles = (roleData as { amas: { roles: Record<string, { tools: Record<string, unknown> }> } }).amas
  .roles;

function shuffleKeys(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((v, i) => shuffleKeys(v, seed + i));
  if (typeof value !== 'object' || value === null) return value;
  const keys = Object.keys(value);
  const rotated = keys
    .slice(seed % (keys.length || 1))
    .concat(keys.slice(0, seed % (keys.length || 1)))
    .reverse();
  const out: Record<string, unknown> = Object.create(null);
  for (const k of rotated) out[k] = shuffleKeys((value as Record<string, unknown>)[k], seed + 1);
  return out;
}

describe('properties', () => {
  it('canonical JSON: key order never changes the text or the hash, and the value survives', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), (value, seed) => {
        const a = canonicalJson(value);
        const b = canonicalJson(shuffleKeys(value, seed));
        expect(b).toBe(a);
        expect(sha256(b)).toBe(sha256(a));
        expect(JSON.parse(a)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('the tool-access twin never throws and always answers one of the three documented shapes', () => {
    fc.assert(
      fc.property(fc.anything(), (input) => {
        const d = evaluateToolAccess(roleData, input);
        const shape = d.allow ? 'allow' : d.escalate ? 'escalate' : 'deny';
        expect(d.allow && d.escalate).toBe(false);
        if (shape === 'allow') expect(d.reasons).toEqual([]);
        if (shape === 'escalate') expect(d.reasons).toEqual(['approval_required']);
        if (shape === 'deny') expect(d.reasons).toHaveLength(1);
      }),
    );
  });

  it('a tool that a role does not list is never allowed, whatever the input', () => {
    const roleNames = Object.keys(roles);
    fc.assert(
      fc.property(
        fc.constantFrom(...roleNames),
        fc.string(),
        fc.dictionary(fc.string(), fc.jsonValue()),
        (role, tool, toolInput) => {
          fc.pre(!Object.hasOwn(roles[role]?.tools ?? {}, tool));
          const d = evaluateToolAccess(roleData, { agent_role: role, tool_name: tool, input: toolInput });
          expect(d).toEqual({ allow: false, escalate: false, reasons: ['tool_not_allowed'] });
        },
      ),
    );
  });

  it('only true, or an object with allow === true and no escalation, reads as allow', () => {
    fc.assert(
      fc.property(fc.anything(), fc.boolean(), (result, objectOnly) => {
        const r = readResult(result, objectOnly);
        if (r.outcome !== 'allow') return;
        const isTrue = result === true && !objectOnly;
        const isAllowObject =
          typeof result === 'object' &&
          result !== null &&
          (result as { allow?: unknown }).allow === true &&
          (result as { escalate?: unknown }).escalate !== true;
        expect(isTrue || isAllowObject).toBe(true);
      }),
    );
  });
});
