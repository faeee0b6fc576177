// Independent review of `amas-slo` with hostile definitions: whatever `amas-slo check` accepts, the
// generated rules must pass `promtool check rules` and their generated fixtures `promtool test rules`
// (Debian's promtool), label values must be escaped in PromQL and YAML, alert annotations must render to
// the text written, and every service must get its own dashboard.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { isTelemetryError } from '../src/errors.js';
import { generateDashboards } from '../src/slo/dashboard.js';
import { renderSloFiles, SLO_FILES } from '../src/slo/files.js';
import { generateSloTests } from '../src/slo/fixtures.js';
import { generateAlertRules, generateRecordingRules } from '../src/slo/rules.js';
import { parseSloDefinitions } from '../src/slo/schema.js';
import { sloScratch } from './slo-files.js';

const { dir: scratch, write, promtool } = sloScratch('amas-slo-review-');

function rejected(value: unknown): string {
  try {
    parseSloDefinitions(stringify(value), 'defs.yaml');
  } catch (err) {
    expect(isTelemetryError(err) && err.code).toBe('slo_definitions_invalid');
    return (err as Error).message;
  }
  throw new Error('expected the definitions to be rejected');
}

const availability = { name: 'availability', sli: { type: 'availability' }, objective: 99.9 };
const service = (name: string, job: unknown, extra: Record<string, unknown> = {}) => ({
  name,
  selector: { job },
  slos: [availability],
  ...extra,
});

// Every hostile thing at once, so that promtool runs once on all of it.
const TEMPLATE_TEXT = 'freeze {{ deploys }}, {{.Labels}} and {{ $value }}; $labels stays; {{{{';
const YAML_TEXT = 'key: value # not a comment\n- not a list\n&anchor *alias ! %tag "quoted" \'single\'';
const LONG_A = `orders-fulfilment-and-shipping-${'a'.repeat(30)}`;
const LONG_B = `orders-fulfilment-and-shipping-${'b'.repeat(30)}`;
const hostile = {
  version: 1,
  defaults: {
    exclude_routes: ['/health"z', '/a.b*', 'x\\y', '/new\nline', '/{{ route }}'],
    error_budget_policy: [
      { budget_remaining_below: 50, severity: 'ticket', action: TEMPLATE_TEXT },
      { budget_remaining_below: 25, severity: 'page', action: YAML_TEXT },
    ],
  },
  services: [
    service('quotes', 'a"b\\c\nd\re\tf', { owner: 'team {{ on-call }}', description: 'desc {{ x }}' }),
    service('regex', { regex: 'api-[0-9]+|api-canary', example: 'api-7' }),
    service(LONG_A, 'long-a'),
    service(LONG_B, 'long-b'),
    {
      name: 'strict',
      selector: { job: 'strict' },
      slos: [
        { name: 'five-nines', sli: { type: 'availability' }, objective: 99.999 },
        { name: 'fast', sli: { type: 'latency', threshold_seconds: 0.25 }, objective: 99.95 },
      ],
    },
  ],
};

describe('hostile SLO definitions that amas-slo accepts', () => {
  const defs = parseSloDefinitions(stringify(hostile), 'hostile.yaml');

  it('generate rules and fixtures that promtool checks and tests successfully', () => {
    const out = write('hostile', renderSloFiles(defs, { tests: true }));
    const check = promtool(['check', 'rules', SLO_FILES.recording, SLO_FILES.alerts], out);
    expect(check.output).toMatch(/SUCCESS: \d+ rules found[\s\S]*SUCCESS: \d+ rules found/);
    expect(check.ok).toBe(true);
    const test = promtool(['test', 'rules', SLO_FILES.tests], out);
    expect(test.output).toContain('SUCCESS');
    expect(test.ok).toBe(true);
  }, 60_000);

  it('escape quotes, backslashes and line breaks of label values into PromQL', () => {
    const expr = generateRecordingRules(defs).groups[0]?.rules[0]?.expr ?? '';
    expect(expr).toContain('job="a\\"b\\\\c\\nd\re\tf"');
    expect(expr).toContain(
      'http_route!~"/health\\"z|/a\\\\.b\\\\*|x\\\\\\\\y|/new\\nline|/\\\\{\\\\{ route \\\\}\\\\}"',
    );
  });

  it('write alert annotations that render, through Go templates, to exactly the text of the definitions', () => {
    const out = write('annotations', renderSloFiles(defs, { tests: true }));
    const fixtures = parse(readFileSync(join(out, SLO_FILES.tests), 'utf8')) as {
      tests: { alert_rule_test: { exp_alerts: { exp_annotations: Record<string, string> }[] }[] }[];
    };
    const expected = fixtures.tests.flatMap((t) =>
      t.alert_rule_test.flatMap((a) => a.exp_alerts.map((e) => e.exp_annotations.description)),
    );
    // promtool test rules (above) compares these with what Prometheus renders from the rule files.
    expect(expected).toContain(`Error budget policy for team {{ on-call }}: ${TEMPLATE_TEXT}`);
    expect(expected).toContain(`Error budget policy for team {{ on-call }}: ${YAML_TEXT}`);
    const policy = generateAlertRules(defs).groups[0]?.rules.find(
      (r) => r.labels?.budget_remaining_below === '50%',
    );
    expect(policy?.annotations?.description).not.toContain('{{ deploys }}');
  });

  it('round-trip every string through the YAML they are written in', () => {
    const files = renderSloFiles(defs, { tests: true });
    const alerts = parse(files.get(SLO_FILES.alerts) ?? '') as ReturnType<typeof generateAlertRules>;
    expect(alerts).toEqual(JSON.parse(JSON.stringify(generateAlertRules(defs))));
    const tests = parse(files.get(SLO_FILES.tests) ?? '') as unknown;
    expect(tests).toEqual(
      JSON.parse(JSON.stringify(generateSloTests(defs, [SLO_FILES.recording, SLO_FILES.alerts]))),
    );
  });

  it('give services whose names share a long prefix distinct dashboards, with uids Grafana accepts', () => {
    const dashboards = generateDashboards(defs);
    const uids = dashboards.map((d) => d.uid);
    expect(new Set(uids).size).toBe(defs.services.length);
    for (const uid of uids) expect(uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(uids).toContain('amas-slo-quotes');
    const files = [...renderSloFiles(defs).keys()].filter((k) => k.startsWith(`${SLO_FILES.dashboards}/`));
    expect(files).toHaveLength(defs.services.length);
    expect(dashboards.find((d) => d.title.endsWith(LONG_A))?.uid).not.toBe(
      dashboards.find((d) => d.title.endsWith(LONG_B))?.uid,
    );
  });
});

describe('definitions amas-slo must refuse, with the place of the problem', () => {
  it.each([
    [100, /services\[0\]\.slos\[0\]\.objective/],
    [0, /services\[0\]\.slos\[0\]\.objective/],
    [100.5, /services\[0\]\.slos\[0\]\.objective/],
    [-1, /services\[0\]\.slos\[0\]\.objective/],
  ])('an objective of %s', (objective, where) => {
    const message = rejected({
      version: 1,
      services: [service('api', 'api', { slos: [{ ...availability, objective }] })],
    });
    expect(message).toMatch(where);
  });

  it.each([
    ['a lookahead', '(?!canary)api'],
    ['a lookbehind', '(?<=x)api'],
    ['a backreference', '(a)\\1'],
    ['a named group in the JavaScript form', '(?<name>api)'],
  ])('a selector regex with %s, which Prometheus (RE2) cannot compile', (_what, regex) => {
    const message = rejected({
      version: 1,
      services: [service('api', { regex, example: 'api' })],
    });
    expect(message).toMatch(/services\[0\]\.selector\.job: regex .* (RE2|Prometheus)/);
  });

  it('but not an escaped parenthesis or question mark that only looks like one', () => {
    const defs = parseSloDefinitions(
      stringify({ version: 1, services: [service('api', { regex: 'api\\(\\?=x\\)', example: 'api(?=x)' })] }),
    );
    const out = write('escaped-regex', renderSloFiles(defs));
    expect(promtool(['check', 'rules', SLO_FILES.recording], out).ok).toBe(true);
  });
});

describe('amas-slo generate on a file system that says no', () => {
  it('exits 1 with one line, not a stack trace, when --out is below a regular file', () => {
    const file = join(scratch, 'a-file');
    writeFileSync(file, 'not a directory');
    const definitions = join(import.meta.dirname, '..', '..', '..', 'config', 'slo_definitions.yaml');
    const cli = join(import.meta.dirname, '..', 'dist', 'cli.js');
    const r = spawnSync(
      process.execPath,
      [cli, 'generate', '--in', definitions, '--out', join(file, 'out')],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^amas-slo: ENOTDIR: not a directory/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
