import type { Contract, RoleData } from './types.js';

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
  return out;
}

/**
 * Builds the role data document for OPA from resolved contracts: per role its version, description and
 * the tools it may call with their approval rules. Budgets and JSON Schemas stay out: this package
 * enforces them. Keys are sorted, so the same contracts always give the same document.
 *
 * @example
 * ```ts
 * import { createRegistry, predefinedRoles, toRoleData } from '@amas/contracts';
 * const registry = createRegistry({ contracts: predefinedRoles() });
 * const doc = toRoleData(registry.roles().map((r) => registry.contract(r)!));
 * ```
 */
export function toRoleData(contracts: readonly Contract[]): RoleData {
  const roles: Record<string, unknown> = {};
  for (const c of contracts) {
    const tools: Record<string, unknown> = {};
    for (const t of Object.values(c.tools)) {
      const a = t.approval;
      tools[t.name] = {
        approval:
          a.mode === 'never'
            ? { mode: 'never' }
            : {
                ...a,
                approvers: [...a.approvers],
                ttl_seconds: a.ttl_seconds ?? 900,
              },
      };
    }
    roles[c.name] = { version: c.version, description: c.description, tools };
  }
  return sortKeys({ amas: { roles } }) as RoleData;
}

const LINE_WIDTH = 110;

/** Two-space JSON with objects expanded and arrays of scalars on one line when they fit: what biome writes. */
function stringify(value: unknown, indent: string, prefix: number): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every((v) => v === null || typeof v !== 'object')) {
      const inline = `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
      if (prefix + inline.length + 1 <= LINE_WIDTH) return inline;
    }
    const inner = `${indent}  `;
    return `[\n${value.map((v) => inner + stringify(v, inner, inner.length)).join(',\n')}\n${indent}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 0) return '{}';
    const inner = `${indent}  `;
    const lines = entries.map(([k, v]) => {
      const head = `${inner}${JSON.stringify(k)}: `;
      return head + stringify(v, inner, head.length);
    });
    return `{\n${lines.join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/**
 * The role data document as written by `amas-contracts export-opa`: sorted keys, two-space indent, arrays
 * of scalars on one line when they fit in 110 columns (as the repository's formatter writes JSON), and a
 * final newline. The same contracts always give the same bytes.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { createRegistry, formatRoleData, predefinedRoles } from '@amas/contracts';
 * const r = createRegistry({ contracts: predefinedRoles() });
 * writeFileSync('policies/roles.json', formatRoleData(r.roles().map((n) => r.contract(n)!)));
 * ```
 */
export function formatRoleData(contracts: readonly Contract[]): string {
  return `${stringify(toRoleData(contracts), '', 0)}\n`;
}
