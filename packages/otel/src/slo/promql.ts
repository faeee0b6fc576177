import { parseDuration } from './duration.js';
import type { SloDefinition, SloDefinitions, SloService } from './schema.js';

/** A PromQL string literal body: backslashes and double quotes escaped. */
export function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Label matchers of the service, the excluded routes included, e.g. `job="api",http_route!~"/healthz"`. */
export function serviceMatchers(defs: SloDefinitions, service: SloService): string {
  const parts = Object.entries(service.selector).map(([label, m]) =>
    typeof m === 'string' ? `${label}=${quote(m)}` : `${label}=~${quote(m.regex)}`,
  );
  if (service.excludeRoutes.length > 0) {
    parts.push(`${defs.metrics.routeLabel}!~${quote(service.excludeRoutes.map(escapeRegex).join('|'))}`);
  }
  return parts.join(',');
}

/** A bucket boundary matched however the exporter wrote it (`0.5`, `0.50`, `1`, `1.0`). */
export function leMatcher(threshold: number): string {
  const text = String(threshold);
  return text.includes('.') ? `le=~${quote(`${escapeRegex(text)}0*`)}` : `le=~${quote(`${text}(\\.0+)?`)}`;
}

/** The error-budget ratio of an objective in percent, free of floating-point noise (99.9 → 0.001). */
export function budgetOf(slo: SloDefinition): number {
  return Number(((100 - slo.objective) / 100).toPrecision(12));
}

export function objectiveRatio(slo: SloDefinition): number {
  return Number((slo.objective / 100).toPrecision(12));
}

/** The windows over which the SLI error ratio is recorded: every alert window and 5m, shortest first. */
export function sliWindows(slo: SloDefinition): string[] {
  const windows = new Set<string>(['5m']);
  for (const a of [...slo.page, ...slo.ticket]) {
    windows.add(a.shortWindow);
    windows.add(a.longWindow);
  }
  windows.delete(slo.window);
  return [...windows].sort((a, b) => (parseDuration(a) as number) - (parseDuration(b) as number));
}

/** The SLI error ratio over `window` from the raw histogram: bad requests over all requests. */
export function sliErrorRatio(
  defs: SloDefinitions,
  service: SloService,
  slo: SloDefinition,
  window: string,
): string {
  const h = defs.metrics.histogram;
  const sel = serviceMatchers(defs, service);
  // `> 0` drops the sample when there was no traffic: no NaN from 0/0 that would poison the period ratio.
  const total = `(sum(rate(${h}_count{${sel}}[${window}])) > 0)`;
  if (slo.sli.type === 'availability') {
    const errors = `sum(rate(${h}_count{${sel},${defs.metrics.statusLabel}=~"5.."}[${window}]))`;
    return `(${errors} or vector(0)) / ${total}`;
  }
  const good = `sum(rate(${h}_bucket{${sel},${leMatcher(slo.sli.thresholdSeconds)}}[${window}]))`;
  return `1 - ((${good} or vector(0)) / ${total})`;
}

export function sloLabels(service: SloService, slo: SloDefinition): string {
  return `service=${quote(service.name)},slo=${quote(slo.name)}`;
}
