import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { isTelemetryError } from '../src/errors.js';
import { generateDashboards } from '../src/slo/dashboard.js';
import { renderSloFiles, SLO_FILES } from '../src/slo/files.js';
import { generateAlertRules, generateRecordingRules } from '../src/slo/rules.js';
import { parseSloDefinitions, type SloDefinitions } from '../src/slo/schema.js';
import { sloScratch } from './slo-files.js';

const definitionsFile = join(import.meta.dirname, '..', '..', '..', 'config', 'slo_definitions.yaml');
const shipped = (): SloDefinitions =>
  parseSloDefinitions(readFileSync(definitionsFile, 'utf8'), 'slo_definitions.yaml');
const { dir: scratch, write, promtool } = sloScratch('amas-slo-');

function invalid(text: string): string {
  try {
    parseSloDefinitions(text, 'defs.yaml');
  } catch (err) {
    expect(isTelemetryError(err) && err.code).toBe('slo_definitions_invalid');
    return (err as Error).message;
  }
  throw new Error('expected the definitions to be rejected');
}

const minimal = {
  version: 1,
  services: [
    {
      name: 'api',
      selector: { job: 'api' },
      slos: [{ name: 'availability', sli: { type: 'availability' }, objective: 99.9 }],
    },
  ],
};
const yamlOf = (value: unknown) => stringify(value);
const withSlo = (slo: Record<string, unknown>) =>
  yamlOf({ ...minimal, services: [{ ...minimal.services[0], slos: [slo] }] });

describe('config/slo_definitions.yaml', () => {
  it('defines the orchestrator, the AI router, the security service and the agents', () => {
    const defs = shipped();
    expect(defs.services.map((s) => s.name)).toEqual([
      'orchestrator',
      'ai-router',
      'security-service',
      'agents',
    ]);
    for (const s of defs.services) {
      expect(s.slos.map((x) => x.sli.type).sort()).toEqual(['availability', 'latency']);
    }
    expect(defs.errorBudgetPolicy.map((p) => p.budgetRemainingBelow)).toEqual([50, 25, 0]);
  });

  it('uses the SRE workbook burn rates over 30 days: 14.4x and 6x page, 1x tickets', () => {
    const [slo] = shipped().services[0]?.slos ?? [];
    expect(slo?.page.map((a) => [a.longWindow, a.shortWindow, a.burnRate])).toEqual([
      ['1h', '5m', 14.4],
      ['6h', '30m', 6],
    ]);
    expect(slo?.ticket.map((a) => [a.longWindow, a.shortWindow, a.burnRate])).toEqual([['3d', '6h', 1]]);
  });
});

describe('schema validation, with clear errors', () => {
  it('scales the burn rates to the SLO window', () => {
    const defs = parseSloDefinitions(
      withSlo({ name: 'a', sli: { type: 'availability' }, objective: 99.9, window: '28d' }),
    );
    expect(defs.services[0]?.slos[0]?.page.map((a) => a.burnRate)).toEqual([13.44, 5.6]);
    expect(defs.services[0]?.slos[0]?.ticket[0]?.burnRate).toBe(0.933);
  });

  it.each([
    ['a YAML syntax error, with its line', 'version: 1\nservices: [\n  name: x', /line \d+, column \d+/],
    ['an unknown key', yamlOf({ ...minimal, servces: [] }), /unknown key "servces"/],
    ['a wrong version', yamlOf({ ...minimal, version: 2 }), /version: must be 1/],
    ['no services', yamlOf({ version: 1, services: [] }), /services: Too small/],
    [
      'an objective of 100%',
      withSlo({ name: 'a', sli: { type: 'availability' }, objective: 100 }),
      /services\[0\]\.slos\[0\]\.objective/,
    ],
    [
      'an unknown SLI type',
      withSlo({ name: 'a', sli: { type: 'saturation' }, objective: 99 }),
      /sli\.type must be/,
    ],
    [
      'a latency threshold off the bucket boundaries',
      withSlo({ name: 'a', sli: { type: 'latency', threshold_seconds: 0.3 }, objective: 99 }),
      /threshold_seconds: 0\.3 is not a bucket boundary/,
    ],
    [
      'a bad duration',
      withSlo({ name: 'a', sli: { type: 'availability' }, objective: 99, window: '1 month' }),
      /window: must be a Prometheus duration/,
    ],
    [
      'an alert window longer than the SLO window',
      withSlo({ name: 'a', sli: { type: 'availability' }, objective: 99, window: '2d' }),
      /long_window: 3d is longer than the SLO window 2d/,
    ],
    [
      'an objective so low that the page alert can never fire',
      withSlo({ name: 'a', sli: { type: 'availability' }, objective: 90 }),
      /page alert burning 14\.4x .* can never fire/,
    ],
    [
      'a short window as long as the long one',
      yamlOf({
        ...minimal,
        defaults: {
          burn_rate_alerts: { page: [{ long_window: '1h', short_window: '1h', budget_consumed: 2 }] },
        },
      }),
      /short_window: must be shorter than long_window/,
    ],
    [
      'a service name used twice',
      yamlOf({ ...minimal, services: [minimal.services[0], minimal.services[0]] }),
      /services\[1\]\.name: "api" is used twice/,
    ],
    [
      'a label name Prometheus rejects',
      yamlOf({ ...minimal, services: [{ ...minimal.services[0], selector: { 'job-name': 'x' } }] }),
      /must be a Prometheus label name/,
    ],
    [
      'a regex example the regex does not match',
      yamlOf({
        ...minimal,
        services: [
          { ...minimal.services[0], selector: { job: { regex: 'agent-[a-z]+', example: 'worker-1' } } },
        ],
      }),
      /example "worker-1" does not match "agent-\[a-z\]\+"/,
    ],
  ])('rejects %s', (_what, text, message) => {
    const msg = invalid(text);
    expect(msg).toMatch(/^defs\.yaml is not valid:\n {2}- /);
    expect(msg).toMatch(message);
  });

  it('reports every problem at once', () => {
    const msg = invalid(
      yamlOf({
        ...minimal,
        services: [
          {
            ...minimal.services[0],
            slos: [
              { name: 'a', sli: { type: 'latency', threshold_seconds: 0.3 }, objective: 99 },
              { name: 'a', sli: { type: 'availability' }, objective: 99 },
            ],
          },
        ],
      }),
    );
    expect(msg.split('\n  - ')).toHaveLength(3);
  });
});

describe('generated Prometheus rules', () => {
  it('pass promtool check rules', () => {
    const out = write('check', renderSloFiles(shipped()));
    const result = promtool(['check', 'rules', SLO_FILES.recording, SLO_FILES.alerts], out);
    expect(result.output).toMatch(/SUCCESS: \d+ rules found[\s\S]*SUCCESS: \d+ rules found/);
    expect(result.ok).toBe(true);
  });

  it('pass promtool test rules on the generated fixtures: burning pages and tickets, healthy is quiet, a spike stops paging', () => {
    const out = write('test', renderSloFiles(shipped(), { tests: true }));
    const tests = parse(readFileSync(join(out, SLO_FILES.tests), 'utf8')) as { tests: { name: string }[] };
    expect(tests.tests.length).toBeGreaterThanOrEqual(6);
    const result = promtool(['test', 'rules', SLO_FILES.tests], out);
    expect(result.output).toContain('SUCCESS');
    expect(result.ok).toBe(true);
  }, 60_000);

  it('fail those fixtures when an alert threshold is wrong (the fixtures do test the rules)', () => {
    const out = write('broken', renderSloFiles(shipped(), { tests: true }));
    const alerts = readFileSync(join(out, SLO_FILES.alerts), 'utf8');
    // The orchestrator's availability page thresholds (14.4x and 6x a 0.1% budget) raised to 50%.
    const broken = alerts.replaceAll('> 0.0144 and', '> 0.5 and').replaceAll('> 0.006 and', '> 0.5 and');
    expect(broken).not.toBe(alerts);
    writeFileSync(join(out, SLO_FILES.alerts), broken);
    const result = promtool(['test', 'rules', SLO_FILES.tests], out);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/FAILED[\s\S]*AmasSloBurnRatePage/);
  }, 60_000);

  it('compute the SLIs from the histogram and labels of the definitions, without the excluded routes', () => {
    const rules = generateRecordingRules(shipped()).groups[0]?.rules ?? [];
    const availability = rules.find(
      (r) => r.record === 'slo:sli_error:ratio_rate1h' && r.labels?.slo === 'availability',
    );
    expect(availability?.expr).toContain(
      'http_server_request_duration_seconds_count{job="amas/orchestrator",http_route!~"/health|/healthz|/livez|/readyz|/metrics",http_response_status_code=~"5.."}[1h]',
    );
    const latency = rules.find(
      (r) => r.record === 'slo:sli_error:ratio_rate1h' && r.labels?.slo === 'latency',
    );
    expect(latency?.expr).toContain('le=~"1(\\\\.0+)?"');
    const agents = generateRecordingRules(shipped()).groups[3]?.rules[0]?.expr;
    expect(agents).toContain('job=~"amas/agent-[a-z0-9-]+"');
  });

  it('escape label values so that a definition cannot inject PromQL', () => {
    const defs = parseSloDefinitions(
      yamlOf({ ...minimal, services: [{ ...minimal.services[0], selector: { job: 'a"} or vector(1) #' } }] }),
    );
    const expr = generateRecordingRules(defs).groups[0]?.rules[0]?.expr;
    expect(expr).toContain('job="a\\"} or vector(1) #"');
    const out = write('escape', renderSloFiles(defs));
    expect(promtool(['check', 'rules', SLO_FILES.recording], out).ok).toBe(true);
  });

  it('page and ticket with distinct names, severities and the policy actions', () => {
    const rules = generateAlertRules(shipped()).groups[2]?.rules ?? [];
    expect(rules.map((r) => `${r.alert}/${r.labels?.severity}/${r.labels?.slo}`)).toContain(
      'AmasSloBurnRatePage/page/availability',
    );
    const exhausted = rules.find((r) => r.labels?.budget_remaining_below === '0%');
    expect(exhausted?.labels?.severity).toBe('page');
    expect(exhausted?.annotations?.description).toMatch(
      /^Error budget policy for security team: Budget exhausted/,
    );
  });
});

describe('generated Grafana dashboards', () => {
  it('show the golden signals and each SLO, one dashboard per service', () => {
    const dashboards = generateDashboards(shipped());
    expect(dashboards.map((d) => d.uid)).toEqual([
      'amas-slo-orchestrator',
      'amas-slo-ai-router',
      'amas-slo-security-service',
      'amas-slo-agents',
    ]);
    const [d] = dashboards;
    expect(d?.schemaVersion).toBe(39);
    const titles = d?.panels.map((p) => p.title) ?? [];
    expect(titles).toEqual(
      expect.arrayContaining([
        'Traffic (requests per second)',
        'Errors (share of 5xx)',
        'Duration',
        'Error budget left (30d)',
        'Burn rate',
      ]),
    );
    const ids = d?.panels.map((p) => p.id) ?? [];
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d?.panels ?? []) if (p.type !== 'row') expect(p.datasource?.uid).toBe('$datasource');
  });

  it('query only valid PromQL (every panel expression passes promtool)', () => {
    const exprs = generateDashboards(shipped()).flatMap((d) => d.panels.flatMap((p) => p.targets ?? []));
    expect(exprs.length).toBeGreaterThan(20);
    const file = {
      groups: [{ name: 'panels', rules: exprs.map((t, i) => ({ record: `panel:expr:${i}`, expr: t.expr })) }],
    };
    const out = join(scratch, 'panels');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'panels.yaml'), stringify(file, { lineWidth: 0 }));
    const result = promtool(['check', 'rules', 'panels.yaml'], out);
    expect(result.output).toContain('SUCCESS');
    expect(result.ok).toBe(true);
  });
});
