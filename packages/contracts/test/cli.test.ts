import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../src/cli-run.js';
import { predefinedRolesDir } from '../src/predefined.js';

const dir = mkdtempSync(join(tmpdir(), 'amas-contracts-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  let out = '';
  let err = '';
  const code = run(args, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

function file(name: string, text: string) {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const good = `name: reader
version: 1.0.0
description: Reads.
tools:
  read_file:
    input: { type: object, properties: { path: { type: string } } }
    effects: { file.read: 1 }
budgets:
  - { effect: file.read, limit: 10, window: 1h }
`;
const broken = `name: reader
version: 1.0.0
description: Reads.
tools:
  read_file:
    input: { type: object, properties: { path: { type: strin } } }
budgets:
  - { effect: file.reed, limit: 10, window: 1h }
`;

describe('amas-contracts validate', () => {
  it('exits 0 on good contract files', () => {
    const r = cli('validate', file('good.yaml', good));
    expect(r.code).toBe(0);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/ok: 1 contract/);
  });

  it('exits 1 on broken files with one "file:path: message" line per problem', () => {
    const p = file('broken.yaml', broken);
    const r = cli('validate', p);
    expect(r.code).toBe(1);
    expect(r.out.trim().split('\n')).toEqual([
      `${p}:tools.read_file.input.properties.path.type: invalid JSON Schema: must be equal to one of the allowed values`,
      `${p}:budgets[0].effect: no tool of the contract has the effect "file.reed"`,
    ]);
  });

  it('--format json gives file, path, line, column and message for CI annotations', () => {
    const p = file('broken2.yaml', broken);
    const r = cli('validate', '--format', 'json', p);
    expect(r.code).toBe(1);
    const issues = JSON.parse(r.out);
    expect(issues).toEqual([
      expect.objectContaining({
        file: p,
        path: 'tools.read_file.input.properties.path.type',
        line: 6,
        column: 56,
      }),
      { file: p, path: 'budgets[0].effect', line: 8, column: 15, message: expect.any(String) },
    ]);
  });

  it('--format github writes workflow annotations', () => {
    const p = file('broken3.yaml', broken);
    const r = cli('validate', '--format', 'github', p);
    expect(r.out).toContain(
      `::error file=${p.replace(/:/g, '%3A')},line=8,col=15::budgets[0].effect: no tool`,
    );
  });

  it('--format github escapes commas and colons in file names', () => {
    const p = file('broken,6.yaml', broken);
    const r = cli('validate', '--format', 'github', p);
    expect(r.out).toContain(`file=${p.replace(/:/g, '%3A').replace(/,/g, '%2C')},line=8,col=15::`);
  });

  it('validates the predefined roles', () => {
    expect(cli('validate', predefinedRolesDir()).code).toBe(0);
  });

  it('exits 2 on usage errors', () => {
    expect(cli('validate').code).toBe(2);
    expect(cli('validate', '--format', 'xml', 'x').code).toBe(2);
    expect(cli('frobnicate').code).toBe(2);
    expect(cli('validate', '--nope', 'x').code).toBe(2);
  });
});

describe('amas-contracts export-opa', () => {
  it('defaults to the predefined roles and writes sorted, pretty JSON', () => {
    const r = cli('export-opa');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(Object.keys(doc.amas.roles)).toEqual([
      'admin',
      'code_reviewer',
      'orchestrator',
      'security_auditor',
    ]);
    expect(r.out).toContain('"approvers": ["approvals:admin"],');
    expect(r.out.endsWith('}\n')).toBe(true);
  });

  it('writes --out from given files, the same bytes every time', () => {
    const out = join(dir, 'roles.json');
    const p = file('good2.yaml', good);
    expect(cli('export-opa', '--out', out, p).code).toBe(0);
    const first = readFileSync(out, 'utf8');
    expect(cli('export-opa', '--out', out, p).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(first);
    expect(JSON.parse(first)).toEqual({
      amas: {
        roles: {
          reader: {
            version: '1.0.0',
            description: 'Reads.',
            tools: { read_file: { approval: { mode: 'never' } } },
          },
        },
      },
    });
  });

  it('refuses to export broken contracts', () => {
    const r = cli('export-opa', file('broken4.yaml', broken));
    expect(r.code).toBe(1);
    expect(r.err).toContain('budgets[0].effect');
  });
});

describe('amas-contracts diff', () => {
  const before = file('before.yaml', good);
  const after = file(
    'after.yaml',
    good
      .replace('limit: 10', 'limit: 50')
      .replace(
        'budgets:',
        '  delete_file:\n    input: { type: object }\n    approval: { mode: always, approvers: [ops] }\nbudgets:',
      ),
  );

  it('lists tools added and limits raised, and a missing version bump', () => {
    const r = cli('diff', before, after);
    expect(r.code).toBe(0);
    expect(r.out.split('\n').filter(Boolean)).toEqual([
      'widened  reader: tool "delete_file" added (approval always)',
      'widened  reader: budget "file.read" per principal: 10 per 1h -> 50 per 1h',
      'changed  reader: permissions changed but the version stayed 1.0.0',
    ]);
  });

  it('--fail-on-widen exits 1 when a permission widens, 0 when it narrows', () => {
    expect(cli('diff', '--fail-on-widen', before, after).code).toBe(1);
    expect(cli('diff', '--fail-on-widen', after, before).code).toBe(0);
    expect(cli('diff', '--format', 'json', after, before).out).toContain('"kind": "narrowed"');
  });

  it('says so when nothing changed, and needs exactly two arguments', () => {
    expect(cli('diff', before, before).out).toBe('no permission changes\n');
    expect(cli('diff', before).code).toBe(2);
  });
});

describe('the bin', () => {
  const bin = join(import.meta.dirname, '..', 'dist', 'cli.js');

  it('answers --help with exit 0, and schema with the format', () => {
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/export-opa/);
    expect(cli('validate', '--help').code).toBe(0);
    expect(JSON.parse(cli('schema').out).title).toBe('AMAS role contract');
    expect(cli('--version').out).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('sets the process exit code', () => {
    const r = spawnSync(process.execPath, [bin, 'validate', file('broken5.yaml', broken)], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
  });
});
