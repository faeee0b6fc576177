import { createHash } from 'node:crypto';
import { quote, serviceMatchers, sliWindows, sloLabels } from './promql.js';
import type { SloDefinitions, SloService } from './schema.js';

/** A Grafana dashboard (JSON model, schema version 39), ready to import or to provision. */
export type GrafanaDashboard = Record<string, unknown> & {
  uid: string;
  title: string;
  panels: GrafanaPanel[];
};

/** One Grafana panel of a generated dashboard. */
export interface GrafanaPanel {
  id: number;
  type: 'timeseries' | 'stat' | 'row';
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: 'prometheus'; uid: string };
  targets?: { refId: string; expr: string; legendFormat?: string }[];
  fieldConfig?: Record<string, unknown>;
  options?: Record<string, unknown>;
  description?: string;
}

const DATASOURCE = { type: 'prometheus' as const, uid: '$datasource' };

/**
 * One Grafana dashboard per service: the golden signals (rate, errors, duration), traffic by route, and per
 * SLO the error ratio against its budget, the burn rate, and the error budget left. It reads the recording
 * rules of {@link generateRecordingRules}, so Prometheus must load those.
 *
 * @example
 * ```ts
 * for (const d of generateDashboards(parseSloDefinitions(text))) {
 *   writeFileSync(`dashboards/${d.uid}.json`, JSON.stringify(d, null, 2));
 * }
 * ```
 */
export function generateDashboards(defs: SloDefinitions): GrafanaDashboard[] {
  return defs.services.map((service) => dashboard(defs, service));
}

/**
 * `amas-slo-<service>`, or, past Grafana's 40 characters, its first 31 and a hash of the whole name: cutting
 * it alone would give two services with a long common prefix one uid, and one file would overwrite the other.
 */
function dashboardUid(name: string): string {
  const uid = `amas-slo-${name}`;
  if (uid.length <= 40) return uid;
  return `${uid.slice(0, 31)}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

function dashboard(defs: SloDefinitions, service: SloService): GrafanaDashboard {
  const panels: GrafanaPanel[] = [];
  let id = 1;
  let y = 0;
  const svc = `service=${quote(service.name)}`;
  const add = (panel: Omit<GrafanaPanel, 'id' | 'datasource'>): void => {
    panels.push({ id: id++, ...(panel.type === 'row' ? {} : { datasource: DATASOURCE }), ...panel });
  };
  const row = (title: string): void => {
    add({ type: 'row', title, gridPos: { h: 1, w: 24, x: 0, y } });
    y += 1;
  };
  const series = (
    title: string,
    x: number,
    w: number,
    unit: string,
    targets: { expr: string; legendFormat?: string }[],
    description?: string,
  ): void =>
    add({
      type: 'timeseries',
      title,
      gridPos: { h: 8, w, x, y },
      targets: targets.map((t, i) => ({ refId: String.fromCharCode(65 + i), ...t })),
      fieldConfig: { defaults: { unit }, overrides: [] },
      ...(description ? { description } : {}),
    });

  row('Golden signals');
  series('Traffic (requests per second)', 0, 8, 'reqps', [
    { expr: `amas:http_requests:rate5m{${svc}}`, legendFormat: 'requests' },
  ]);
  series('Errors (share of 5xx)', 8, 8, 'percentunit', [
    { expr: `amas:http_errors:ratio_rate5m{${svc}}`, legendFormat: '5xx' },
  ]);
  series(
    'Duration',
    16,
    8,
    's',
    [50, 95, 99].map((p) => ({
      expr: `amas:http_request_duration_seconds:p${p}_5m{${svc}}`,
      legendFormat: `p${p}`,
    })),
  );
  y += 8;
  series('Traffic by route', 0, 24, 'reqps', [
    {
      expr: `sum by (${defs.metrics.routeLabel}) (rate(${defs.metrics.histogram}_count{${serviceMatchers(defs, service)}}[5m]))`,
      legendFormat: `{{${defs.metrics.routeLabel}}}`,
    },
  ]);
  y += 8;

  for (const slo of service.slos) {
    const labels = sloLabels(service, slo);
    const fastest = slo.page[0] ?? slo.ticket[0];
    row(
      `SLO ${slo.name}: ${slo.objective}% over ${slo.window}${slo.description ? ` (${slo.description})` : ''}`,
    );
    series(
      'SLI error ratio against the budget',
      0,
      10,
      'percentunit',
      [
        ...sliWindows(slo)
          .slice(0, 3)
          .map((w) => ({
            expr: `slo:sli_error:ratio_rate${w}{${labels}}`,
            legendFormat: `error ratio ${w}`,
          })),
        { expr: `1 - slo:objective:ratio{${labels}}`, legendFormat: 'error budget' },
      ],
      'Above the error-budget line, the SLO window is being spent faster than it lasts.',
    );
    series(
      'Burn rate',
      10,
      8,
      'none',
      (fastest ? [fastest.shortWindow, fastest.longWindow] : ['5m']).map((w) => ({
        expr: `slo:sli_error:ratio_rate${w}{${labels}} / on (service, slo) (1 - slo:objective:ratio{${labels}})`,
        legendFormat: `burn rate ${w}`,
      })),
      '1 spends exactly the budget over the SLO window; the page threshold is the highest burn rate alerted on.',
    );
    add({
      type: 'stat',
      title: `Error budget left (${slo.window})`,
      gridPos: { h: 8, w: 6, x: 18, y },
      targets: [{ refId: 'A', expr: `slo:error_budget:remaining_ratio{${labels}}` }],
      fieldConfig: {
        defaults: {
          unit: 'percentunit',
          thresholds: {
            mode: 'absolute',
            steps: [
              { color: 'red', value: null },
              { color: 'orange', value: 0 },
              { color: 'green', value: 0.25 },
            ],
          },
        },
        overrides: [],
      },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'background',
      },
    });
    y += 8;
  }

  return {
    uid: dashboardUid(service.name),
    title: `AMAS SLOs: ${service.name}`,
    description: service.description ?? `Golden signals and SLOs of ${service.name}, generated by amas-slo.`,
    tags: ['amas', 'slo', service.name],
    editable: true,
    schemaVersion: 39,
    version: 1,
    refresh: '1m',
    time: { from: 'now-24h', to: 'now' },
    timezone: 'browser',
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Prometheus',
          type: 'datasource',
          query: 'prometheus',
          hide: 0,
          current: {},
        },
      ],
    },
    annotations: { list: [] },
    panels,
  };
}
