import { parseDocument } from 'yaml';
import * as z from 'zod';
import { TelemetryError } from '../errors.js';
import { parseDuration } from './duration.js';

// The HTTP server duration histogram OpenTelemetry services emit (`http.server.request.duration`, seconds),
// named as the OTLP-to-Prometheus translation names it, with the bucket boundaries the semantic
// conventions advise (and the http instrumentation uses).
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

const duration = z.string().refine((v) => parseDuration(v) !== undefined, {
  error: 'must be a Prometheus duration such as 5m, 1h, 3d or 30d',
});
const labelName = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, { error: 'must be a Prometheus label name' });
const metricName = z
  .string()
  .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, { error: 'must be a Prometheus metric name' });
const name = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, {
  error: 'must be lower-case letters, digits and dashes, starting with a letter',
});
const percent = z.number().gt(0).lt(100);
const matcher = z.union(
  [z.string().min(1), z.strictObject({ regex: z.string().min(1), example: z.string().min(1).optional() })],
  { error: 'must be a label value, or { regex: <RE2 expression>, example: <a value it matches> }' },
);
const burnAlert = z.strictObject({
  long_window: duration,
  short_window: duration,
  budget_consumed: percent,
});

const sli = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('availability') }),
    z.strictObject({ type: z.literal('latency'), threshold_seconds: z.number().positive() }),
  ],
  { error: 'sli.type must be "availability" (share of requests without a 5xx) or "latency"' },
);

const slo = z.strictObject({
  name,
  description: z.string().optional(),
  sli,
  objective: percent,
  window: duration.optional(),
});

const service = z.strictObject({
  name,
  description: z.string().optional(),
  owner: z.string().optional(),
  selector: z.record(labelName, matcher).refine((s) => Object.keys(s).length > 0, {
    error: 'needs at least one label, e.g. { job: orchestrator }',
  }),
  exclude_routes: z.array(z.string()).optional(),
  slos: z.array(slo).min(1),
});

const definitions = z.strictObject({
  version: z.literal(1, { error: 'must be 1' }),
  metrics: z
    .strictObject({
      histogram: metricName.default('http_server_request_duration_seconds'),
      status_label: labelName.default('http_response_status_code'),
      route_label: labelName.default('http_route'),
      buckets: z.array(z.number().positive()).min(1).default(DEFAULT_BUCKETS),
    })
    .default({
      histogram: 'http_server_request_duration_seconds',
      status_label: 'http_response_status_code',
      route_label: 'http_route',
      buckets: DEFAULT_BUCKETS,
    }),
  defaults: z
    .strictObject({
      window: duration.default('30d'),
      exclude_routes: z.array(z.string()).default([]),
      burn_rate_alerts: z
        .strictObject({
          page: z.array(burnAlert).default([]),
          ticket: z.array(burnAlert).default([]),
        })
        .optional(),
      error_budget_policy: z
        .array(
          z.strictObject({
            budget_remaining_below: z.number().min(0).lt(100),
            severity: z.enum(['page', 'ticket']),
            action: z.string().min(1),
          }),
        )
        .default([]),
    })
    .prefault({}),
  services: z.array(service).min(1),
});

type Raw = z.output<typeof definitions>;
export type SloDefinitionsInput = z.input<typeof definitions>;

/** One multi-window burn-rate alert condition. */
export interface BurnRateAlert {
  readonly longWindow: string;
  readonly shortWindow: string;
  /** Share of the error budget this condition catches being spent, in percent. */
  readonly budgetConsumed: number;
  /** `budgetConsumed × window ÷ longWindow`: 14.4, 6 and 1 for the defaults over 30 days. */
  readonly burnRate: number;
}

/** One SLO, resolved: defaults applied, durations checked. */
export interface SloDefinition {
  readonly name: string;
  readonly description: string | undefined;
  readonly sli:
    | { readonly type: 'availability' }
    | { readonly type: 'latency'; readonly thresholdSeconds: number };
  /** Percent, e.g. 99.9. */
  readonly objective: number;
  readonly window: string;
  readonly page: readonly BurnRateAlert[];
  readonly ticket: readonly BurnRateAlert[];
}

/** One service, resolved. */
export interface SloService {
  readonly name: string;
  readonly description: string | undefined;
  readonly owner: string | undefined;
  /** Label matchers selecting the service's series: a value, or `{ regex, example }`. */
  readonly selector: Readonly<Record<string, string | { readonly regex: string; readonly example?: string }>>;
  readonly excludeRoutes: readonly string[];
  readonly slos: readonly SloDefinition[];
}

/** The validated content of an SLO definitions file. */
export interface SloDefinitions {
  readonly metrics: {
    readonly histogram: string;
    readonly statusLabel: string;
    readonly routeLabel: string;
    readonly buckets: readonly number[];
  };
  readonly errorBudgetPolicy: readonly {
    readonly budgetRemainingBelow: number;
    readonly severity: 'page' | 'ticket';
    readonly action: string;
  }[];
  readonly services: readonly SloService[];
}

const DEFAULT_PAGE = [
  { long_window: '1h', short_window: '5m', budget_consumed: 2 },
  { long_window: '6h', short_window: '30m', budget_consumed: 5 },
];
const DEFAULT_TICKET = [{ long_window: '3d', short_window: '6h', budget_consumed: 10 }];

/**
 * Parses and validates an SLO definitions file (YAML): its structure against the schema, then what the
 * schema cannot say (unique names, latency thresholds on a bucket boundary, short windows shorter than
 * long ones, alert windows within the SLO window). Every problem is reported at once, each with its path,
 * in a `TelemetryError` with code `slo_definitions_invalid`.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { parseSloDefinitions } from '@amas/otel';
 *
 * const defs = parseSloDefinitions(readFileSync('config/slo_definitions.yaml', 'utf8'), 'config/slo_definitions.yaml');
 * console.log(defs.services.map((s) => s.name));
 * ```
 */
export function parseSloDefinitions(text: string, source = 'SLO definitions'): SloDefinitions {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const at = e.linePos?.[0];
      return `${at ? `line ${at.line}, column ${at.col}: ` : ''}${e.message.split('\n')[0]}`;
    });
    fail(source, problems);
  }
  return validateSloDefinitions(doc.toJS(), source);
}

/**
 * Validates SLO definitions already in memory (the object form of the YAML file).
 *
 * @example
 * ```ts
 * const defs = validateSloDefinitions({ version: 1, services: [{ name: 'api', selector: { job: 'api' },
 *   slos: [{ name: 'availability', sli: { type: 'availability' }, objective: 99.9 }] }] });
 * ```
 */
export function validateSloDefinitions(value: unknown, source = 'SLO definitions'): SloDefinitions {
  const result = definitions.safeParse(value);
  if (!result.success) {
    fail(
      source,
      result.error.issues.map((issue) => {
        if (issue.code === 'unrecognized_keys') {
          return `${at([...issue.path])}unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
        }
        if (issue.code === 'invalid_key') {
          return `${at(issue.path)}${issue.issues[0]?.message ?? 'invalid key'}`;
        }
        return `${at(issue.path)}${issue.message.replace(/^Invalid input: /, '')}`;
      }),
    );
  }
  return resolve(result.data, source);
}

function resolve(raw: Raw, source: string): SloDefinitions {
  const problems: string[] = [];
  const buckets = raw.metrics.buckets;
  const pageRaw = raw.defaults.burn_rate_alerts?.page ?? DEFAULT_PAGE;
  const ticketRaw = raw.defaults.burn_rate_alerts?.ticket ?? DEFAULT_TICKET;
  const seenServices = new Set<string>();

  const services = raw.services.map((svc, i): SloService => {
    if (seenServices.has(svc.name))
      problems.push(`${at(['services', i, 'name'])}"${svc.name}" is used twice`);
    seenServices.add(svc.name);
    for (const [label, m] of Object.entries(svc.selector)) {
      if (typeof m === 'string') continue;
      const where = at(['services', i, 'selector', label]);
      let re: RegExp | undefined;
      try {
        re = new RegExp(`^(?:${m.regex})$`);
      } catch {
        problems.push(`${where}regex ${JSON.stringify(m.regex)} does not compile`);
      }
      const unsupported = notRe2(m.regex);
      if (unsupported !== undefined) {
        problems.push(
          `${where}regex ${JSON.stringify(m.regex)} uses ${unsupported}, which Prometheus (RE2) does not support`,
        );
      }
      if (re && m.example !== undefined && !re.test(m.example)) {
        problems.push(
          `${where}example ${JSON.stringify(m.example)} does not match ${JSON.stringify(m.regex)}`,
        );
      }
    }
    const seenSlos = new Set<string>();
    const slos = svc.slos.map((s, j): SloDefinition => {
      const path = ['services', i, 'slos', j];
      if (seenSlos.has(s.name))
        problems.push(`${at([...path, 'name'])}"${s.name}" is used twice in ${svc.name}`);
      seenSlos.add(s.name);
      if (s.sli.type === 'latency' && !buckets.includes(s.sli.threshold_seconds)) {
        problems.push(
          `${at([...path, 'sli', 'threshold_seconds'])}${s.sli.threshold_seconds} is not a bucket boundary of ${raw.metrics.histogram} (${buckets.join(', ')}); a latency SLI can only be counted at a boundary`,
        );
      }
      const window = s.window ?? raw.defaults.window;
      const windowSeconds = parseDuration(window) as number;
      const alerts = (list: typeof pageRaw, kind: string): BurnRateAlert[] =>
        list.map((a, k) => {
          const long = parseDuration(a.long_window) as number;
          const short = parseDuration(a.short_window) as number;
          const where = ['defaults', 'burn_rate_alerts', kind, k];
          if (short >= long)
            problems.push(`${at([...where, 'short_window'])}must be shorter than long_window`);
          if (long > windowSeconds) {
            problems.push(
              `${at([...where, 'long_window'])}${a.long_window} is longer than the SLO window ${window}`,
            );
          }
          const burnRate = round((a.budget_consumed / 100) * (windowSeconds / long));
          if (burnRate * ((100 - s.objective) / 100) >= 1) {
            problems.push(
              `${at([...path, 'objective'])}with a ${100 - s.objective}% error budget, the ${kind} alert burning ${burnRate}x (${a.budget_consumed}% in ${a.long_window}) needs an error ratio above 100% and can never fire`,
            );
          }
          return {
            longWindow: a.long_window,
            shortWindow: a.short_window,
            budgetConsumed: a.budget_consumed,
            burnRate,
          };
        });
      return {
        name: s.name,
        description: s.description,
        sli:
          s.sli.type === 'latency' ? { type: 'latency', thresholdSeconds: s.sli.threshold_seconds } : s.sli,
        objective: s.objective,
        window,
        page: alerts(pageRaw, 'page'),
        ticket: alerts(ticketRaw, 'ticket'),
      };
    });
    return {
      name: svc.name,
      description: svc.description,
      owner: svc.owner,
      selector: svc.selector,
      excludeRoutes: svc.exclude_routes ?? raw.defaults.exclude_routes,
      slos,
    };
  });
  if (problems.length > 0) fail(source, [...new Set(problems)]);
  return deepFreeze({
    metrics: {
      histogram: raw.metrics.histogram,
      statusLabel: raw.metrics.status_label,
      routeLabel: raw.metrics.route_label,
      buckets,
    },
    errorBudgetPolicy: raw.defaults.error_budget_policy.map((p) => ({
      budgetRemainingBelow: p.budget_remaining_below,
      severity: p.severity,
      action: p.action,
    })),
    services,
  });
}

/**
 * What a JavaScript regular expression may use that RE2, Prometheus's engine, refuses (the rules would then
 * fail to load): lookarounds, backreferences, and named groups written `(?<name>`.
 */
function notRe2(source: string): string | undefined {
  for (const escaped of source.matchAll(/\\./g)) {
    if (/^\\[1-9k]$/.test(escaped[0])) return `a backreference (${escaped[0]})`;
  }
  const unescaped = source.replace(/\\./g, '__');
  if (/\(\?<?[=!]/.test(unescaped)) return 'a lookahead or lookbehind';
  if (/\(\?</.test(unescaped)) return 'a named group (?<name>...); use a plain group';
  return undefined;
}

function at(path: PropertyKey[]): string {
  if (path.length === 0) return '';
  return `${path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('')}: `;
}

function fail(source: string, problems: string[]): never {
  throw new TelemetryError(
    'slo_definitions_invalid',
    `${source} is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
  );
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
