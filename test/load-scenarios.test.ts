import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createRegistry, predefinedRoles } from '@amas/contracts';
import { describe, expect, it } from 'vitest';

// The load scenarios (k6 and `pnpm load`) must measure the gateway, not its denials: every request they
// send as an agent is one the shipped contracts allow, and both drivers read the same definitions.
const dir = resolve(import.meta.dirname, '..', 'tests', 'load');
const scenarios = JSON.parse(readFileSync(resolve(dir, 'scenarios.json'), 'utf8')) as {
  stages: { name: string; seconds: number; connections: number }[];
  requests: { scenario: string; as?: string; path: string; body?: unknown }[];
};
const thresholds = JSON.parse(readFileSync(resolve(dir, 'thresholds.json'), 'utf8')) as Record<
  string,
  number
>;
const k6 = readFileSync(resolve(dir, 'k6_scenarios.js'), 'utf8');
const roleOf: Record<string, string> = {
  'reviewer-agent': 'code_reviewer',
  'orchestrator-agent': 'orchestrator',
};

describe('load scenarios', () => {
  it('ramp up, hold and ramp down, with p95, p99 and error-rate thresholds', () => {
    const c = scenarios.stages.map((s) => s.connections);
    expect(c.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...c)).toBeGreaterThan(c[0] as number);
    expect(Math.max(...c)).toBeGreaterThan(c.at(-1) as number);
    expect(Object.keys(thresholds).sort()).toEqual(['max_error_rate', 'p95_ms', 'p99_ms']);
  });

  it('cover the orchestrator, tool calls and health, in k6 and in pnpm load alike', () => {
    const names = [...new Set(scenarios.requests.map((r) => r.scenario))].sort();
    expect(names).toEqual(['health', 'orchestrator', 'tool_calls']);
    for (const name of names) expect(k6).toContain(`export function ${name}(`);
    expect(k6).toContain("open('./scenarios.json')");
    expect(k6).toContain("open('./thresholds.json')");
  });

  it.each(scenarios.requests.filter((r) => r.as))(
    '$as $path is allowed by its contract, without budget',
    async (r) => {
      const registry = createRegistry({ contracts: predefinedRoles() });
      const [, role, tool] = /^\/v1\/agents\/([^/]+)\/tools\/([^/]+)$/.exec(r.path) ?? [];
      expect(role).toBe(roleOf[r.as as string]);
      const verdict = await registry.check({
        role: role as string,
        tool: tool as string,
        input: r.body,
        principal: 'load',
      });
      expect(verdict.code).toBe('allowed');
      const contract = registry.contract(role as string);
      expect(contract?.budgets.filter((b) => b.tool === tool)).toEqual([]);
      expect(contract?.tools[tool as string]?.effects).toEqual({});
    },
  );
});
