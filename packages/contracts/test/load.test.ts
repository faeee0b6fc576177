import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { contractJsonSchema, contractSchema } from '../src/format.js';
import { loadContracts } from '../src/load.js';
import { createRegistry } from '../src/registry.js';
import { sampleContract } from './helpers/contracts.js';

const dir = mkdtempSync(join(tmpdir(), 'amas-contracts-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

const base = `name: base
version: 1.0.0
description: Base role.
tools:
  read_file:
    input: { type: object, properties: { path: { type: string } } }
    effects: { file.read: 1 }
budgets:
  - { effect: file.read, limit: 10, window: 1h }
`;

describe('contract format', () => {
  it('accepts the sample contract and refuses unknown keys with their path', () => {
    expect(contractSchema.safeParse(sampleContract()).success).toBe(true);
    const { issues } = loadContracts({ contracts: [{ ...sampleContract(), tols: {} }] });
    expect(issues).toEqual([expect.objectContaining({ path: '', message: expect.stringMatching(/tols/) })]);
  });

  it('reports every problem with the file, the path, the line and the reason', () => {
    const path = file(
      'broken.yaml',
      `name: broken
version: one
description: Broken.
tools:
  read_file:
    input: { type: object }
    approval: { mode: sometimes }
budgets:
  - { effect: file.read, tool: read_file, limit: 1, window: 1h }
  - { effect: file.read, limit: -1, window: 1w }
`,
    );
    const { contracts, issues } = loadContracts({ paths: [path] });
    expect(contracts).toEqual([]);
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i]));
    expect(byPath.version).toMatchObject({
      file: path,
      line: 2,
      message: expect.stringMatching(/semantic version/),
    });
    expect(byPath['tools.read_file.approval.mode']).toMatchObject({ line: 7 });
    expect(byPath['budgets[0]']).toMatchObject({ line: 9, message: expect.stringMatching(/exactly one/) });
    expect(byPath['budgets[1].limit']).toMatchObject({ line: 10 });
    expect(byPath['budgets[1].window']).toMatchObject({ message: expect.stringMatching(/1h/) });
  });

  it('refuses duplicate keys in YAML and in JSON instead of keeping the last one', () => {
    const y = file('dup.yaml', 'name: a\nname: b\nversion: 1.0.0\ndescription: d\n');
    const j = file('dup.json', '{"name": "a", "version": "1.0.0", "description": "d", "name": "admin"}');
    for (const p of [y, j]) {
      const { issues } = loadContracts({ paths: [p] });
      expect(issues[0]).toMatchObject({ file: p, message: expect.stringMatching(/unique/i) });
    }
  });

  it('refuses YAML merge keys and alias bombs', () => {
    const merge = file('merge.yaml', 'a: &a { x: 1 }\nname: m\nversion: 1.0.0\ndescription: d\n<<: *a\n');
    expect(
      loadContracts({ paths: [merge] })
        .issues.map((i) => i.message)
        .join(),
    ).toMatch(/<</);
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    const bomb = file('bomb.yaml', `${lines.join('\n')}\nname: b\nversion: 1.0.0\ndescription: d\n`);
    const { issues } = loadContracts({ paths: [bomb] });
    expect(issues[0]?.message).toMatch(/alias/i);
  });

  it('reads JSON, YAML and directories (sorted, hidden files skipped)', () => {
    const d = join(dir, 'set');
    file('set/b.yaml', base);
    file('set/sub/a.json', JSON.stringify(sampleContract()));
    file('set/.hidden.yaml', 'not: [valid');
    file('set/notes.txt', 'ignored');
    const { contracts, issues } = loadContracts({ paths: [d] });
    expect(issues).toEqual([]);
    expect(contracts.map((c) => [c.name, c.file])).toEqual([
      ['base', join(d, 'b.yaml')],
      ['reader', join(d, 'sub/a.json')],
    ]);
  });

  it('reports a missing path and a syntax error with its line', () => {
    const bad = file('syntax.yaml', 'name: x\ntools: [\n');
    const { issues } = loadContracts({ paths: [join(dir, 'missing.yaml'), bad] });
    expect(issues[0]).toMatchObject({
      file: join(dir, 'missing.yaml'),
      message: 'no such file or directory',
    });
    expect(issues[1]).toMatchObject({ file: bad, line: expect.any(Number) });
  });

  it('exports a draft-07 JSON Schema of the format for editors', () => {
    const schema = contractJsonSchema();
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.required).toEqual(expect.arrayContaining(['name', 'version', 'description']));
    expect(Object.keys(schema.properties as object)).toEqual(
      expect.arrayContaining(['name', 'version', 'description', 'extends', 'tools', 'budgets']),
    );
  });
});

describe('extends', () => {
  it('merges the tools and budgets of the base, and records the chain', () => {
    const b = file('ext/base.yaml', base);
    const child = file(
      'ext/child.yaml',
      'name: child\nversion: 1.0.0\ndescription: Child.\nextends: base\ntools:\n  chat: { input: { type: object } }\n',
    );
    const { contracts, issues } = loadContracts({ paths: [b, child] });
    expect(issues).toEqual([]);
    const c = contracts.find((x) => x.name === 'child')!;
    expect(Object.keys(c.tools).sort()).toEqual(['chat', 'read_file']);
    expect(c.budgets).toEqual([expect.objectContaining({ effect: 'file.read', limit: 10 })]);
    expect(c.extends).toEqual(['base']);
  });

  it('makes a conflicting tool an error, never a silent merge', () => {
    const child = {
      name: 'child',
      version: '1.0.0',
      description: 'Child.',
      extends: 'base',
      tools: { read_file: { input: { type: 'object' } } },
    };
    const { issues } = loadContracts({ paths: [file('conf/base.yaml', base)], contracts: [child] });
    expect(issues).toEqual([
      expect.objectContaining({
        path: 'tools.read_file',
        message: 'conflicts with the definition inherited from "base"',
      }),
    ]);
  });

  it('makes a conflicting budget limit an error', () => {
    const child = {
      name: 'child',
      version: '1.0.0',
      description: 'Child.',
      extends: 'base',
      budgets: [{ effect: 'file.read', limit: 1000, window: 3600 }],
    };
    const { issues } = loadContracts({ paths: [file('confb/base.yaml', base)], contracts: [child] });
    expect(issues).toEqual([
      expect.objectContaining({ path: 'budgets[0]', message: expect.stringMatching(/conflicts/) }),
    ]);
  });

  it('accepts a tool repeated identically (no conflict)', () => {
    const child = {
      name: 'child',
      version: '1.0.0',
      description: 'Child.',
      extends: 'base',
      tools: {
        read_file: {
          input: { type: 'object', properties: { path: { type: 'string' } } },
          effects: { 'file.read': 1 },
        },
      },
    };
    expect(loadContracts({ paths: [file('same/base.yaml', base)], contracts: [child] }).issues).toEqual([]);
  });

  it('reports unknown bases and cycles', () => {
    const doc = (name: string, ext: string) => ({ name, version: '1.0.0', description: 'x', extends: ext });
    const { issues } = loadContracts({ contracts: [doc('a', 'b'), doc('b', 'a'), doc('c', 'nope')] });
    expect(issues.map((i) => i.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/cycle/), 'unknown contract "nope"']),
    );
  });

  it('extends a predefined role without loading it as a role, unless told not to', () => {
    const doc = {
      name: 'my_reviewer',
      version: '1.0.0',
      description: 'Reviewer that may also chat.',
      extends: 'code_reviewer',
      tools: { chat: { input: { type: 'object' } } },
    };
    const { contracts, issues } = loadContracts({ contracts: [doc] });
    expect(issues).toEqual([]);
    expect(contracts.map((c) => c.name)).toEqual(['my_reviewer']);
    expect(Object.keys(contracts[0]!.tools)).toContain('read_file');
    expect(loadContracts({ contracts: [doc], predefinedBases: false }).issues[0]?.message).toBe(
      'unknown contract "code_reviewer"',
    );
  });

  it('uses abstract contracts as bases only', () => {
    const abstract = {
      name: 'shared',
      abstract: true,
      version: '1.0.0',
      description: 'x',
      tools: { t: { input: {} } },
    };
    const child = { name: 'real', version: '1.0.0', description: 'x', extends: 'shared' };
    const { contracts } = loadContracts({ contracts: [abstract, child] });
    expect(contracts.map((c) => c.name)).toEqual(['real']);
  });
});

describe('cross checks', () => {
  it('reports duplicate role names, budgets on unknown tools or effects, and repeated budgets', () => {
    const c = sampleContract({
      budgets: [
        { tool: 'nope', limit: 1, window: '1h' },
        { effect: 'file.write', limit: 1, window: '1h' },
        { effect: 'file.read', limit: 1, window: '1h' },
        { effect: 'file.read', limit: 2, window: 3600 },
      ],
    });
    const { issues } = loadContracts({ contracts: [c, sampleContract()] });
    expect(issues.map((i) => `${i.path}: ${i.message}`)).toEqual(
      expect.arrayContaining([
        'budgets[3]: repeats budgets[2] (effect file.read per principal per 3600000ms)',
        'name: duplicate contract "reader"',
      ]),
    );
    const { issues: i2 } = loadContracts({ contracts: [{ ...c, budgets: c.budgets!.slice(0, 2) }] });
    expect(i2.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'budgets[0].tool: the contract has no tool "nope"',
      'budgets[1].effect: no tool of the contract has the effect "file.write"',
    ]);
  });

  it('refuses JSON Schemas with unknown keywords and remote refs', () => {
    for (const input of [{ type: 'object', propertiez: {} }, { $ref: 'https://example.com/schema.json' }]) {
      const c = sampleContract({ tools: { t: { input } }, budgets: [] });
      expect(loadContracts({ contracts: [c] }).issues[0]).toMatchObject({ path: 'tools.t.input' });
    }
  });

  it('does not honour $data: input cannot choose the constant it is compared with', async () => {
    const input = { type: 'object', properties: { a: { const: { $data: '1/b' } }, b: {} } };
    const r = createRegistry({ contracts: [sampleContract({ tools: { t: { input } }, budgets: [] })] });
    expect((await r.check({ role: 'reader', tool: 't', input: { a: 'x', b: 'x' } })).code).toBe(
      'input_invalid',
    );
  });
});
