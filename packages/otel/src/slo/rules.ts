import { budgetOf, objectiveRatio, serviceMatchers, sliErrorRatio, sliWindows, sloLabels } from './promql.js';
import type { BurnRateAlert, SloDefinition, SloDefinitions, SloService } from './schema.js';

/** A Prometheus recording or alerting rule, as written in a rule file. */
export interface PrometheusRule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A Prometheus rule file: `groups` of named rule lists. */
export interface PrometheusRuleFile {
  groups: { name: string; interval?: string; rules: PrometheusRule[] }[];
}

/**
 * Alert names the generated rules use (each alert also carries `service`, `slo` and `severity` labels).
 *
 * @example
 * ```ts
 * // an Alertmanager route for the pages of the security service
 * const match = { alertname: SLO_ALERTS.page, service: 'security-service' };
 * ```
 */
export const SLO_ALERTS = Object.freeze({
  page: 'AmasSloBurnRatePage',
  ticket: 'AmasSloBurnRateTicket',
  budgetLow: 'AmasSloErrorBudgetLow',
});

const QUANTILES = [0.5, 0.95, 0.99];

/**
 * Prometheus recording rules for every service: the golden signals (request rate, 5xx ratio, latency
 * quantiles), the SLI error ratio of every SLO over every alert window, the ratio over the SLO window, the
 * objective and the error budget remaining. Computed from the HTTP server duration histogram services emit.
 *
 * @example
 * ```ts
 * import { stringify } from 'yaml';
 * import { generateRecordingRules, parseSloDefinitions } from '@amas/otel';
 *
 * const rules = generateRecordingRules(parseSloDefinitions(text));
 * writeFileSync('slo-recording-rules.yaml', stringify(rules));
 * ```
 */
export function generateRecordingRules(defs: SloDefinitions): PrometheusRuleFile {
  const h = defs.metrics.histogram;
  return {
    groups: defs.services.map((service) => {
      const sel = serviceMatchers(defs, service);
      const labels = { service: service.name };
      const rules: PrometheusRule[] = [
        { record: 'amas:http_requests:rate5m', expr: `sum(rate(${h}_count{${sel}}[5m]))`, labels },
        {
          record: 'amas:http_errors:ratio_rate5m',
          expr: `(sum(rate(${h}_count{${sel},${defs.metrics.statusLabel}=~"5.."}[5m])) or vector(0)) / (sum(rate(${h}_count{${sel}}[5m])) > 0)`,
          labels,
        },
        ...QUANTILES.map((q) => ({
          record: `amas:http_request_duration_seconds:p${Math.round(q * 100)}_5m`,
          expr: `histogram_quantile(${q}, sum by (le) (rate(${h}_bucket{${sel}}[5m])))`,
          labels,
        })),
      ];
      for (const slo of service.slos) {
        const sloLabelSet = { service: service.name, slo: slo.name };
        for (const window of sliWindows(slo)) {
          rules.push({
            record: `slo:sli_error:ratio_rate${window}`,
            expr: sliErrorRatio(defs, service, slo, window),
            labels: sloLabelSet,
          });
        }
        const five = `slo:sli_error:ratio_rate5m{${sloLabels(service, slo)}}`;
        rules.push(
          {
            // The average of the 5m ratios over the whole window: cheap, and close to the exact ratio
            // when traffic is steady (the approach of Sloth and of the SRE workbook's examples).
            record: `slo:sli_error:ratio_rate${slo.window}`,
            expr: `sum_over_time(${five}[${slo.window}]) / count_over_time(${five}[${slo.window}])`,
            labels: sloLabelSet,
          },
          { record: 'slo:objective:ratio', expr: `vector(${objectiveRatio(slo)})`, labels: sloLabelSet },
          {
            record: 'slo:error_budget:remaining_ratio',
            expr: `1 - (slo:sli_error:ratio_rate${slo.window}{${sloLabels(service, slo)}} / ${budgetOf(slo)})`,
            labels: sloLabelSet,
          },
        );
      }
      return { name: `amas-slo-${service.name}-recording`, rules };
    }),
  };
}

/**
 * Multi-window, multi-burn-rate alerts (the SRE workbook's pattern: page when 2% of the budget burns in
 * 1 hour or 5% in 6 hours, ticket when 10% burns in 3 days, each confirmed by a short window so that the
 * alert stops soon after the burn stops), plus the error-budget policy alerts.
 *
 * @example
 * ```ts
 * const alerts = generateAlertRules(parseSloDefinitions(text));
 * ```
 */
export function generateAlertRules(defs: SloDefinitions): PrometheusRuleFile {
  const file = alertRulesAsWritten(defs);
  for (const group of file.groups) {
    for (const rule of group.rules) {
      if (rule.annotations === undefined) continue;
      rule.annotations = Object.fromEntries(
        Object.entries(rule.annotations).map(([k, v]) => [k, templateOf(v)]),
      );
    }
  }
  return file;
}

/**
 * Prometheus expands annotations as Go templates: text from the definitions (an owner, a policy action)
 * with `{{` in it would fail `promtool check rules` or render as something else. Each `{{` becomes an
 * action that prints `{{`, so the annotation renders to exactly the text written.
 */
function templateOf(text: string): string {
  return text.replaceAll('{{', '{{ "{{" }}');
}

/** The alert rules with their annotations as they must render (what the promtool fixtures expect). */
export function alertRulesAsWritten(defs: SloDefinitions): PrometheusRuleFile {
  return {
    groups: defs.services.map((service) => {
      const rules: PrometheusRule[] = [];
      for (const slo of service.slos) {
        const labels = { service: service.name, slo: slo.name };
        if (slo.page.length > 0) {
          rules.push({
            alert: SLO_ALERTS.page,
            expr: burnExpr(service, slo, slo.page),
            for: '2m',
            labels: { severity: 'page', ...labels },
            annotations: burnAnnotations(service, slo, slo.page, 'page'),
          });
        }
        if (slo.ticket.length > 0) {
          rules.push({
            alert: SLO_ALERTS.ticket,
            expr: burnExpr(service, slo, slo.ticket),
            for: '15m',
            labels: { severity: 'ticket', ...labels },
            annotations: burnAnnotations(service, slo, slo.ticket, 'ticket'),
          });
        }
        for (const step of defs.errorBudgetPolicy) {
          rules.push({
            alert: SLO_ALERTS.budgetLow,
            expr: `slo:error_budget:remaining_ratio{${sloLabels(service, slo)}} < ${Number((step.budgetRemainingBelow / 100).toPrecision(12))}`,
            for: '15m',
            labels: {
              severity: step.severity,
              ...labels,
              budget_remaining_below: `${step.budgetRemainingBelow}%`,
            },
            annotations: {
              summary: `${service.name} ${slo.name}: less than ${step.budgetRemainingBelow}% of the ${slo.window} error budget is left`,
              description: `Error budget policy${service.owner ? ` for ${service.owner}` : ''}: ${step.action}`,
            },
          });
        }
      }
      return { name: `amas-slo-${service.name}-alerts`, rules };
    }),
  };
}

function burnExpr(service: SloService, slo: SloDefinition, alerts: readonly BurnRateAlert[]): string {
  const labels = sloLabels(service, slo);
  const budget = budgetOf(slo);
  return alerts
    .map((a) => {
      const threshold = Number((a.burnRate * budget).toPrecision(12));
      return `(slo:sli_error:ratio_rate${a.longWindow}{${labels}} > ${threshold} and slo:sli_error:ratio_rate${a.shortWindow}{${labels}} > ${threshold})`;
    })
    .join(' or ');
}

function burnAnnotations(
  service: SloService,
  slo: SloDefinition,
  alerts: readonly BurnRateAlert[],
  severity: string,
): Record<string, string> {
  const what =
    slo.sli.type === 'availability'
      ? 'share of requests answered with a 5xx'
      : `share of requests slower than ${slo.sli.thresholdSeconds}s`;
  const rates = alerts
    .map(
      (a) =>
        `${a.budgetConsumed}% of the budget in ${a.longWindow} (${a.burnRate}x, confirmed over ${a.shortWindow})`,
    )
    .join(' or ');
  return {
    summary: `${service.name} ${slo.name}: error budget burning too fast (${severity})`,
    description: `In ${service.name}, the ${what} is spending its ${slo.window} error budget (${Number((100 - slo.objective).toPrecision(12))}% for a ${slo.objective}% objective) at ${rates}.`,
  };
}
