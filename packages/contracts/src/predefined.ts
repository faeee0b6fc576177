import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { ContractDocument } from './format.js';
import { type ContractSource, readContractFiles } from './read.js';
import type { PredefinedRole } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The directory that holds the predefined role contracts (`<name>.yaml`): `dist/roles` in the published
 * package. Point `amas-contracts` or your own tooling at it, or copy a file from it to start your own.
 *
 * @example
 * ```ts
 * import { predefinedRolesDir } from '@amas/contracts';
 * console.log(predefinedRolesDir()); // .../node_modules/@amas/contracts/dist/roles
 * ```
 */
export function predefinedRolesDir(): string {
  // Built code sits next to dist/roles; the sources (tests) sit in src/, next to ../roles.
  const candidates = [join(here, 'roles'), join(here, '..', 'roles')];
  return candidates.find((d) => existsSync(join(d, 'admin.yaml'))) ?? candidates[0]!;
}

/**
 * The predefined role contracts (`code_reviewer`, `security_auditor`, `orchestrator`, `admin`) as
 * contract documents, freshly read (change them freely). Pass them to `createRegistry`, whole or filtered.
 *
 * @example
 * ```ts
 * import { createRegistry, predefinedRoles } from '@amas/contracts';
 * const registry = createRegistry({ contracts: predefinedRoles(['code_reviewer', 'orchestrator']) });
 * ```
 */
export function predefinedRoles(names?: readonly PredefinedRole[]): ContractDocument[] {
  const dir = predefinedRolesDir();
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => parse(readFileSync(join(dir, f), 'utf8')) as ContractDocument)
    .filter((doc) => names === undefined || names.includes(doc.name as PredefinedRole));
}

/** The predefined roles as sources with file positions, for bases and the CLI. */
export function predefinedSources(): ContractSource[] {
  return readContractFiles([predefinedRolesDir()]).sources;
}
