import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createRegistry, formatRoleData, predefinedRoles } from '@amas/contracts';
import { describe, expect, it } from 'vitest';

// Contracts are the one source of truth for what a role may do (docs/adr/0006-agent-role-contracts.md):
// the role data OPA loads must be exactly what `amas-contracts export-opa` writes for the shipped roles.
const root = resolve(import.meta.dirname, '..');

describe('policies/roles.json', () => {
  it('is the export of the predefined role contracts, byte for byte', () => {
    const registry = createRegistry({ contracts: predefinedRoles() });
    const exported = formatRoleData(registry.roles().flatMap((role) => registry.contract(role) ?? []));
    expect(readFileSync(resolve(root, 'policies/roles.json'), 'utf8')).toBe(exported);
  });
});
