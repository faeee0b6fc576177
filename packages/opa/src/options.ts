import * as z from 'zod';
import { OpaError } from './errors.js';

const fn = <T>(what: string) =>
  z.custom<T>((v) => typeof v === 'function', { message: `must be a function (${what})` });

const positiveInt = (max: number) => z.number().int().min(1).max(max);

/** Turns zod issues into one message that names every offending option. */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, factory: string): z.output<S> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const where = issue.path.length > 0 ? `option "${issue.path.join('.')}"` : 'options';
    return `${where}: ${issue.message}`;
  });
  throw new OpaError('config_invalid', `${factory}: ${problems.join('; ')}`);
}

const urlSchema = z.string().refine(
  (v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '';
    } catch {
      return false;
    }
  },
  { message: 'must be an http(s) URL without credentials, for example "http://127.0.0.1:8181"' },
);

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// What node:http accepts in a header value: no CR, LF or other control characters but tab.
const headerValue = /^[\t\x20-\x7e\x80-\xff]*$/;

export const clientOptionsSchema = z
  .object({
    url: urlSchema,
    timeoutMs: positiveInt(60_000).default(250),
    retries: z.number().int().min(0).max(5).default(1),
    retryBackoffMs: z.number().int().min(0).max(1_000).default(10),
    headers: z
      .record(
        z.string().regex(headerName, 'must be a valid header name'),
        z.string().regex(headerValue, 'must be a valid header value (no CR, LF or control characters)'),
      )
      .refine((h) => !Object.keys(h).some((k) => k.toLowerCase() === 'authorization'), {
        message: 'must not set authorization: use the "token" option',
      })
      .default({}),
    token: z
      .union([
        z
          .string()
          .min(1)
          .regex(headerValue, 'must not hold CR, LF or control characters (trim a token read from a file)'),
        fn<() => string | Promise<string>>('returning the bearer token'),
      ])
      .optional(),
    maxResponseBytes: z
      .number()
      .int()
      .min(1_024)
      .max(64 * 1024 * 1024)
      .default(256 * 1024),
    provenance: z.boolean().default(false),
    maxSockets: positiveInt(10_000).default(64),
    ca: z.union([z.string(), z.instanceof(Buffer)]).optional(),
  })
  .strict();

export type ClientOptionsInput = z.input<typeof clientOptionsSchema>;
export type ResolvedClientOptions = z.output<typeof clientOptionsSchema>;

export const breakerOptionsSchema = z
  .object({
    failureThreshold: positiveInt(1_000).default(5),
    openMs: positiveInt(600_000).default(1_000),
  })
  .strict();

export const cacheOptionsSchema = z
  .object({
    ttlMs: positiveInt(3_600_000).default(1_000),
    maxEntries: positiveInt(10_000_000).default(10_000),
  })
  .strict();

export const approvalsOptionsSchema = z
  .object({
    store: z
      .custom<object>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          ['create', 'get', 'listPending', 'decide', 'consume'].every(
            (m) => typeof (v as Record<string, unknown>)[m] === 'function',
          ),
        { message: 'must implement ApprovalStore (create, get, listPending, decide, consume)' },
      )
      .optional(),
    pendingTtlSeconds: positiveInt(30 * 24 * 3600).default(3_600),
    maxPendingPerPrincipal: positiveInt(1_000_000).default(20),
    allowSelfApproval: z.boolean().default(false),
    storeTimeoutMs: positiveInt(60_000).default(1_000),
    onAudit: fn<(event: unknown) => void>('receiving each audit event').optional(),
    now: fn<() => number>('returning epoch milliseconds').optional(),
  })
  .strict();

export const enforcerOptionsSchema = z
  .object({
    url: urlSchema.optional(),
    client: z
      .custom<object>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as { evaluateJson?: unknown }).evaluateJson === 'function',
        { message: 'must be a client from createOpaClient()' },
      )
      .optional(),
    timeoutMs: z.unknown().optional(),
    retries: z.unknown().optional(),
    retryBackoffMs: z.unknown().optional(),
    headers: z.unknown().optional(),
    token: z.unknown().optional(),
    maxResponseBytes: z.unknown().optional(),
    provenance: z.unknown().optional(),
    maxSockets: z.unknown().optional(),
    ca: z.unknown().optional(),
    breaker: z
      .union([z.literal(false), breakerOptionsSchema])
      .default({ failureThreshold: 5, openMs: 1_000 }),
    cache: z.union([z.literal(false), cacheOptionsSchema]).default({ ttlMs: 1_000, maxEntries: 10_000 }),
    coalesce: z.boolean().default(true),
    toolAccessPath: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'must be a slash-separated Data API path')
      .default('amas/tool_access/decision'),
    approvals: z
      .union([
        z.custom<object>(
          (v) =>
            typeof v === 'object' &&
            v !== null &&
            typeof (v as { consume?: unknown }).consume === 'function' &&
            typeof (v as { request?: unknown }).request === 'function',
          { message: 'must be created by createApprovals()' },
        ),
        approvalsOptionsSchema,
      ])
      .optional(),
    decisionLog: z
      .object({
        onDecision: fn<(event: unknown) => void>('receiving each decision-log event'),
        includeInput: z.boolean().default(false),
        labels: z.record(z.string(), z.string()).default({}),
        requestedBy: z.string().optional(),
      })
      .strict()
      .optional(),
    now: fn<() => number>('returning epoch milliseconds').optional(),
  })
  .strict()
  .refine((o) => (o.url === undefined) !== (o.client === undefined), {
    message: 'give exactly one of "url" (OPA base URL) or "client" (from createOpaClient())',
    path: ['url'],
  });
