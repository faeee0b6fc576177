import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatRoleData, toRoleData } from '../src/export-opa.js';
import { loadContracts } from '../src/load.js';
import { predefinedRoles, predefinedRolesDir } from '../src/predefined.js';
import { createRegistry } from '../src/registry.js';

// The table at the end of docs/role-data.md, restated: the shipped files must say exactly this.
const TABLE = {
  code_reviewer: {
    tools: ['analyze_code', 'list_files', 'read_file', 'search_code'],
    approvals: {},
    budgets: [
      ['effect', 'file.read', 100, 3_600_000, 'principal'],
      ['effect', 'bytes_read', 10 * 1024 * 1024, 3_600_000, 'principal'],
    ],
  },
  security_auditor: {
    tools: ['list_files', 'read_file', 'run_pentest', 'run_scan', 'scan_dependencies', 'scan_secrets'],
    approvals: {
      run_scan: {
        mode: 'when',
        when: [{ field: 'mode', op: 'equals', value: 'active' }],
        approvers: ['approvals:security'],
        ttl_seconds: 900,
      },
      run_pentest: { mode: 'always', approvers: ['approvals:security'], ttl_seconds: 900 },
    },
    budgets: [
      ['effect', 'file.read', 500, 3_600_000, 'principal'],
      ['effect', 'network', 50, 3_600_000, 'principal'],
    ],
  },
  orchestrator: {
    tools: ['assign_task', 'cancel_task', 'create_task', 'get_task_status', 'invoke_agent', 'list_agents'],
    approvals: {},
    budgets: [['tool', 'invoke_agent', 60, 60_000, 'session']],
  },
  admin: {
    tools: [
      'analyze_code',
      'assign_task',
      'cancel_task',
      'create_task',
      'delete_file',
      'execute_command',
      'get_task_status',
      'invoke_agent',
      'list_agents',
      'list_files',
      'manage_roles',
      'read_file',
      'run_pentest',
      'run_scan',
      'scan_dependencies',
      'scan_secrets',
      'search_code',
      'write_file',
    ],
    approvals: Object.fromEntries(
      ['delete_file', 'execute_command', 'manage_roles', 'run_pentest'].map((t) => [
        t,
        { mode: 'always', approvers: ['approvals:admin'], ttl_seconds: 900 },
      ]),
    ),
    budgets: [['effect', 'file.write', 200, 3_600_000, 'principal']],
  },
} as const;

describe('predefined roles', () => {
  const { contracts, issues } = loadContracts({ paths: [predefinedRolesDir()] });

  it('ship as valid contract files', () => {
    expect(issues).toEqual([]);
    expect(contracts.map((c) => c.name)).toEqual([
      'admin',
      'code_reviewer',
      'orchestrator',
      'security_auditor',
    ]);
  });

  it.each(Object.entries(TABLE))(
    '%s has exactly the tools, approvals and budgets of docs/role-data.md',
    (name, spec) => {
      const c = contracts.find((x) => x.name === name)!;
      expect(Object.keys(c.tools).sort()).toEqual(spec.tools);
      for (const [tool, t] of Object.entries(c.tools)) {
        expect(t.approval, tool).toEqual(
          (spec.approvals as Record<string, unknown>)[tool] ?? { mode: 'never' },
        );
      }
      expect(
        c.budgets.map((b) => [b.effect ? 'effect' : 'tool', b.effect ?? b.tool, b.limit, b.windowMs, b.per]),
      ).toEqual(spec.budgets);
    },
  );

  it('admin has every tool of the other roles', () => {
    const admin = contracts.find((c) => c.name === 'admin')!;
    for (const c of contracts)
      for (const t of Object.keys(c.tools)) expect(Object.keys(admin.tools)).toContain(t);
  });

  it('a tool has the same input and output schema in every role that has it', () => {
    const seen = new Map<string, unknown>();
    for (const c of contracts) {
      for (const [name, t] of Object.entries(c.tools)) {
        const shape = { input: t.input, output: t.output ?? null };
        if (seen.has(name)) expect(shape, `${c.name}.${name}`).toEqual(seen.get(name));
        else seen.set(name, shape);
      }
    }
  });

  it('predefinedRoles() gives documents a registry accepts, filtered by name when asked', async () => {
    expect(predefinedRoles().map((d) => d.name)).toEqual([
      'admin',
      'code_reviewer',
      'orchestrator',
      'security_auditor',
    ]);
    const r = createRegistry({ contracts: predefinedRoles(['code_reviewer']) });
    expect(r.roles()).toEqual(['code_reviewer']);
    const v = await r.check({
      role: 'code_reviewer',
      tool: 'write_file',
      input: { path: 'x', content: '' },
      principal: 'a',
    });
    expect(v.code).toBe('tool_not_allowed');
  });

  it('code_reviewer reads are bounded by bytes as well as by count', async () => {
    const r = createRegistry({ contracts: predefinedRoles(['code_reviewer']) });
    const big = {
      role: 'code_reviewer',
      tool: 'read_file',
      input: { path: 'x', max_bytes: 1_048_576 },
      principal: 'a',
    };
    for (let i = 0; i < 10; i++) expect((await r.check(big)).code).toBe('allowed');
    expect(await r.check(big)).toMatchObject({ code: 'budget_exhausted', budget: { effect: 'bytes_read' } });
  });
});

describe('export for OPA', () => {
  const { contracts } = loadContracts({ paths: [predefinedRolesDir()] });

  it('writes the role data document of docs/role-data.md', () => {
    const doc = toRoleData(contracts);
    expect(doc.amas.roles.security_auditor).toEqual({
      version: '1.0.0',
      description: 'Security scanning; penetration-test tools need approval.',
      tools: expect.objectContaining({
        scan_dependencies: { approval: { mode: 'never' } },
        run_scan: {
          approval: {
            mode: 'when',
            when: [{ field: 'mode', op: 'equals', value: 'active' }],
            approvers: ['approvals:security'],
            ttl_seconds: 900,
          },
        },
        run_pentest: { approval: { mode: 'always', approvers: ['approvals:security'], ttl_seconds: 900 } },
      }),
    });
    expect(Object.keys(doc.amas.roles.security_auditor!.tools)).toHaveLength(6);
    expect(JSON.stringify(doc)).not.toMatch(/budget|schema|limit|effects/);
  });

  it('is stable: sorted keys, the same text whatever the input order', () => {
    const a = formatRoleData(contracts);
    const b = formatRoleData([...contracts].reverse());
    expect(a).toBe(b);
    expect(a.endsWith('}\n')).toBe(true);
    const keys: string[][] = [];
    JSON.parse(a, function (this: Record<string, unknown>, _k, v) {
      if (v && typeof v === 'object' && !Array.isArray(v)) keys.push(Object.keys(v));
      return v;
    });
    for (const k of keys) expect(k).toEqual([...k].sort());
  });

  it('is written the way the repository formatter (biome) writes JSON, so a committed export stays lint-clean', () => {
    const root = join(import.meta.dirname, '..', '..', '..');
    const text = formatRoleData(contracts);
    const r = spawnSync(
      join(root, 'node_modules', '.bin', 'biome'),
      ['format', '--stdin-file-path=roles.json'],
      {
        input: text,
        encoding: 'utf8',
        cwd: root,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(text);
  });

  it('puts long arrays on several lines', () => {
    const c = contracts.find((x) => x.name === 'admin')!;
    const approvers = Array.from({ length: 8 }, (_, i) => `approvals:team-${i}`);
    const wide = {
      ...c,
      tools: { t: { ...c.tools.delete_file!, approval: { mode: 'always' as const, approvers } } },
    };
    expect(formatRoleData([wide])).toContain('"approvers": [\n');
  });

  it('matches the role names the policy page documents', () => {
    const page = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'role-data.md'), 'utf8');
    for (const c of contracts) expect(page).toContain(`\`${c.name}\``);
  });
});
