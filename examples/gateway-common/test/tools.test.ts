import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToolbox, ToolInputError } from '../src/tools/index.js';

let root: string;
let sandbox: string;
let tools: ReturnType<typeof createToolbox>;
const run = (name: string, input: unknown) =>
  (tools.get(name) as (i: never) => Promise<Record<string, unknown>>)(input as never);

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'amas-tools-'));
  sandbox = join(root, 'sandbox');
  mkdirSync(join(sandbox, 'src'), { recursive: true });
  writeFileSync(join(root, 'outside.txt'), 'secret outside the sandbox');
  writeFileSync(
    join(sandbox, 'src', 'a.js'),
    "import x from './b.js';\n// TODO: split\nif (x && y) { for (;;) {} }\n",
  );
  writeFileSync(join(sandbox, 'src', 'creds.js'), "const password = 'hunter22';\n");
  symlinkSync(join(root, 'outside.txt'), join(sandbox, 'escape.txt'));
  tools = createToolbox({ sandboxDir: sandbox, scanTargets: ['127.0.0.1'] });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the example tools', () => {
  it('read a file, truncated at max_bytes', async () => {
    expect(await run('read_file', { path: 'src/a.js', max_bytes: 6 })).toEqual({
      path: 'src/a.js',
      content: 'import',
      truncated: true,
    });
  });

  it.each(['../outside.txt', '/etc/passwd', 'src/../../outside.txt', 'escape.txt', 'nul\u0000byte'])(
    'refuse %j: it leaves the sandbox',
    async (path) => {
      await expect(run('read_file', { path })).rejects.toBeInstanceOf(ToolInputError);
    },
  );

  it('analyse complexity, lint and dependencies', async () => {
    const complexity = await run('analyze_code', { path: 'src', analysis: 'complexity' });
    expect(complexity.totals).toMatchObject({ files: 2, branches: 3 });
    const lint = (await run('analyze_code', { path: 'src/a.js', analysis: 'lint' })) as {
      files: { findings: { rule: string }[] }[];
    };
    expect(lint.files[0]?.findings.map((f) => f.rule)).toEqual(['todo-comment']);
    const deps = (await run('analyze_code', { path: 'src/a.js', analysis: 'dependencies' })) as {
      totals: Record<string, number>;
    };
    expect(deps.totals).toMatchObject({ local: 1, packages: 0 });
  });

  it('find a hard-coded password', async () => {
    const out = (await run('scan_secrets', { path: 'src' })) as {
      findings: { file: string; rule: string }[];
    };
    expect(out.findings).toEqual([
      { file: 'src/creds.js', line: 1, rule: 'hard-coded-password', severity: 'high' },
    ]);
  });

  it('scan only targets in scope', async () => {
    await expect(run('run_scan', { target: '10.0.0.1', mode: 'active' })).rejects.toBeInstanceOf(
      ToolInputError,
    );
    const passive = await run('run_scan', { target: '127.0.0.1', mode: 'passive' });
    expect(passive).toMatchObject({ addresses: ['127.0.0.1'], ports: [] });
  });
});
