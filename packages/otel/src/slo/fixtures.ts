import { TelemetryError } from '../errors.js';
import { budgetOf, quote } from './promql.js';
import { alertRulesAsWritten, type PrometheusRule, SLO_ALERTS } from './rules.js';
import type { SloDefinition, SloDefinitions, SloService } from './schema.js';

/** A `promtool test rules` file. */
export interface PromtoolTestFile {
  rule_files: string[];
  evaluation_interval: string;
  tests: PromtoolTest[];
}

interface PromtoolTest {
  name: string;
  interval: string;
  input_series: { series: string; values: string }[];
  alert_rule_test: {
    eval_time: string;
    alertname: string;
    exp_alerts: { exp_labels: Record<string, string>; exp_annotations?: Record<string, string> }[];
  }[];
  promql_expr_test?: { expr: string; eval_time: string; exp_samples: { labels: string; value: number }[] }[];
}

const PER_MINUTE = 600; // 10 requests per second
const STEPS = 75; // an hour and a quarter of one-minute samples
const FIXTURE_ROUTE = '/fixture';

/**
 * Generated fixtures for `promtool test rules`: for every SLO, synthetic traffic on the service's real
 * series (the histogram and labels of the definitions) in three scenarios, with the alerts each must and
 * must not raise:
 * - burning 20 times the budget: the page and ticket burn-rate alerts and the budget-policy alerts fire,
 *   and the recorded SLI error ratio is the injected one;
 * - healthy, at a quarter of the budget: nothing fires;
 * - a 15-minute spike: the page alert fires during it and stops once the short window no longer sees it.
 *
 * @example
 * ```ts
 * const tests = generateSloTests(defs, ['slo-recording-rules.yaml', 'slo-alert-rules.yaml']);
 * writeFileSync('slo-rules.test.yaml', stringify(tests));
 * // promtool test rules slo-rules.test.yaml
 * ```
 */
export function generateSloTests(defs: SloDefinitions, ruleFiles: string[]): PromtoolTestFile {
  // The fixtures expect annotations as Prometheus renders them: the text of the definitions.
  const alerts = alertRulesAsWritten(defs).groups.flatMap((g) => g.rules);
  const tests: PromtoolTest[] = [];
  // The services' series are distinct, so one test group exercises one SLO of every service at once:
  // the k-th SLO of each, in each scenario. Fewer groups keep promtool fast.
  const depth = Math.max(...defs.services.map((s) => s.slos.length));
  for (let k = 0; k < depth; k++) {
    const cases = defs.services.flatMap((service) => {
      const slo = service.slos[k];
      return slo === undefined ? [] : [{ service, slo, budget: budgetOf(slo) }];
    });
    const names = cases.map((c) => `${c.service.name}/${c.slo.name}`).join(', ');

    const burning = (budget: number) => Math.min(0.9, 20 * budget);
    tests.push({
      name: `burning 20x the error budget pages, tickets and breaks the budget policy: ${names}`,
      interval: '1m',
      input_series: cases.flatMap((c) => traffic(defs, c.service, c.slo, () => burning(c.budget))),
      alert_rule_test: [
        expectAlerts(
          alerts,
          SLO_ALERTS.page,
          '70m',
          cases.filter((c) => c.slo.page.length > 0),
        ),
        expectAlerts(
          alerts,
          SLO_ALERTS.ticket,
          '70m',
          cases.filter((c) => c.slo.ticket.length > 0),
        ),
        expectPolicy(defs, alerts, '70m', cases, (c) => 1 - burning(c.budget) / c.budget),
      ],
      promql_expr_test: cases.flatMap((c) => [
        near(`slo:sli_error:ratio_rate5m{${labels(c.service, c.slo)}}`, burning(c.budget), c),
        near(`amas:http_requests:rate5m{service=${quote(c.service.name)}}`, PER_MINUTE / 60, c),
      ]),
    });

    tests.push({
      name: `a quarter of the error budget raises nothing: ${names}`,
      interval: '1m',
      input_series: cases.flatMap((c) => traffic(defs, c.service, c.slo, () => c.budget / 4)),
      alert_rule_test: [
        expectAlerts(alerts, SLO_ALERTS.page, '70m', []),
        expectAlerts(alerts, SLO_ALERTS.ticket, '70m', []),
        expectPolicy(defs, alerts, '70m', cases, () => 0.75),
      ],
    });

    const spike = (budget: number) => Math.min(0.9, 100 * budget);
    const spiking = cases.filter((c) => {
      const first = c.slo.page[0];
      return first !== undefined && spike(c.budget) > first.burnRate * c.budget;
    });
    if (spiking.length > 0) {
      tests.push({
        name: `a 15-minute spike pages during the spike and stops paging after it: ${spiking.map((c) => `${c.service.name}/${c.slo.name}`).join(', ')}`,
        interval: '1m',
        input_series: spiking.flatMap((c) =>
          traffic(defs, c.service, c.slo, (minute) => (minute < 15 ? spike(c.budget) : 0)),
        ),
        alert_rule_test: [
          expectAlerts(alerts, SLO_ALERTS.page, '10m', spiking),
          expectAlerts(alerts, SLO_ALERTS.page, '60m', []),
        ],
      });
    }
  }
  return { rule_files: ruleFiles, evaluation_interval: '1m', tests };
}

interface Case {
  service: SloService;
  slo: SloDefinition;
  budget: number;
}

function labels(service: SloService, slo: SloDefinition): string {
  return `service=${quote(service.name)},slo=${quote(slo.name)}`;
}

/** promtool compares samples exactly; a recorded ratio is checked to 1e-9 instead. */
function near(expr: string, value: number, c: Case) {
  const groupLabels = expr.startsWith('amas:')
    ? `service=${quote(c.service.name)}`
    : labels(c.service, c.slo);
  return {
    expr: `abs(${expr} - ${round(value)}) < bool 1e-9`,
    eval_time: '70m',
    exp_samples: [{ labels: `{${groupLabels}}`, value: 1 }],
  };
}

function seriesLabels(defs: SloDefinitions, service: SloService): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [label, m] of Object.entries(service.selector)) {
    if (typeof m === 'string') labels[label] = m;
    else if (m.example !== undefined) labels[label] = m.example;
    else {
      throw new TelemetryError(
        'slo_definitions_invalid',
        `services.${service.name}.selector.${label}: test fixtures need a value the regex matches: { regex: ${JSON.stringify(m.regex)}, example: ... }`,
      );
    }
  }
  labels[defs.metrics.routeLabel] = FIXTURE_ROUTE;
  return labels;
}

/**
 * Counter series for one scenario: `bad(minute)` is the share of bad requests of the SLO under test;
 * every other SLO of the service stays perfectly healthy.
 */
function traffic(
  defs: SloDefinitions,
  service: SloService,
  slo: SloDefinition,
  bad: (minute: number) => number,
): { series: string; values: string }[] {
  const h = defs.metrics.histogram;
  const base = seriesLabels(defs, service);
  const availability = slo.sli.type === 'availability';
  const series = (name: string, extra: Record<string, string>, perMinute: (m: number) => number) => ({
    series: `${name}{${Object.entries({ ...base, ...extra })
      .map(([k, v]) => `${k}=${quote(v)}`)
      .join(',')}}`,
    values: counter(perMinute),
  });
  const errors = (m: number) => (availability ? bad(m) * PER_MINUTE : 0);
  const ok = (m: number) => PER_MINUTE - errors(m);
  const status = defs.metrics.statusLabel;
  const out = [
    series(`${h}_count`, { [status]: '200' }, ok),
    series(`${h}_count`, { [status]: '500' }, errors),
  ];
  const thresholds = new Set(
    service.slos.flatMap((s) => (s.sli.type === 'latency' ? [s.sli.thresholdSeconds] : [])),
  );
  for (const t of thresholds) {
    const slowShare = (m: number) =>
      slo.sli.type === 'latency' && slo.sli.thresholdSeconds === t ? bad(m) : 0;
    out.push(
      series(`${h}_bucket`, { [status]: '200', le: String(t) }, (m) => ok(m) - slowShare(m) * PER_MINUTE),
      series(`${h}_bucket`, { [status]: '500', le: String(t) }, errors),
    );
  }
  for (const s of ['200', '500']) {
    out.push(series(`${h}_bucket`, { [status]: s, le: '+Inf' }, s === '200' ? ok : errors));
  }
  return out;
}

/** promtool's expanding notation for a counter that grows by `perMinute(m)` in minute `m`. */
function counter(perMinute: (minute: number) => number): string {
  const parts: string[] = [];
  let value = 0;
  let m = 0;
  while (m < STEPS) {
    const step = perMinute(m);
    let n = 1;
    while (m + n < STEPS && perMinute(m + n) === step) n++;
    parts.push(
      parts.length === 0
        ? `${round(value)}+${round(step)}x${n}`
        : `${round(value + step)}+${round(step)}x${n - 1}`,
    );
    value += step * n;
    m += n;
  }
  return parts.join(' ');
}

function expectAlerts(alerts: PrometheusRule[], alertname: string, evalTime: string, firing: Case[]) {
  return {
    eval_time: evalTime,
    alertname,
    exp_alerts: firing.flatMap((c) =>
      alerts
        .filter(
          (r) =>
            r.alert === alertname && r.labels?.service === c.service.name && r.labels?.slo === c.slo.name,
        )
        .map((r) => ({ exp_labels: { ...r.labels }, exp_annotations: { ...r.annotations } })),
    ),
  };
}

function expectPolicy(
  defs: SloDefinitions,
  alerts: PrometheusRule[],
  evalTime: string,
  cases: Case[],
  remaining: (c: Case) => number,
) {
  const firing = cases.flatMap((c) =>
    alerts.filter(
      (r) =>
        r.alert === SLO_ALERTS.budgetLow &&
        r.labels?.service === c.service.name &&
        r.labels?.slo === c.slo.name &&
        defs.errorBudgetPolicy.some(
          (p) =>
            `${p.budgetRemainingBelow}%` === r.labels?.budget_remaining_below &&
            remaining(c) < p.budgetRemainingBelow / 100,
        ),
    ),
  );
  return {
    eval_time: evalTime,
    alertname: SLO_ALERTS.budgetLow,
    exp_alerts: firing.map((r) => ({ exp_labels: { ...r.labels }, exp_annotations: { ...r.annotations } })),
  };
}

function round(n: number): number {
  return Number(n.toPrecision(12));
}
