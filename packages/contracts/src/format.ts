import * as z from 'zod';

const ROLE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const TOOL_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
const EFFECT_NAME = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
const FIELD_PATH = /^[^.]+(\.[^.]+)*$/;
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$/;
const WINDOW = /^[1-9]\d{0,5}(s|m|h|d)$/;

const roleName = z
  .string()
  .regex(ROLE_NAME, 'must start with a letter and hold only letters, digits, "_" and "-" (at most 64)');
const toolName = z
  .string()
  .regex(TOOL_NAME, 'must start with a letter and hold only letters, digits, "_", "." and "-" (at most 128)');
const effectName = z
  .string()
  .max(128)
  .regex(EFFECT_NAME, 'must be lower-case words joined by "." (for example "file.read")');
const fieldPath = z.string().max(256).regex(FIELD_PATH, 'must be a dot path such as "mode" or "target.host"');
const scope = z.string().min(1).max(256);

/** A JSON Schema (draft-07), kept as data; ajv compiles it at load. */
const jsonSchema = z.union([z.boolean(), z.record(z.string(), z.unknown())]);

const condition = z.discriminatedUnion('op', [
  z.strictObject({ field: fieldPath, op: z.enum(['equals', 'not_equals', 'contains']), value: z.json() }),
  z.strictObject({ field: fieldPath, op: z.enum(['in', 'not_in']), value: z.array(z.json()) }),
  z.strictObject({ field: fieldPath, op: z.literal('prefix'), value: z.string() }),
  z.strictObject({ field: fieldPath, op: z.enum(['gt', 'gte', 'lt', 'lte']), value: z.number() }),
  z.strictObject({ field: fieldPath, op: z.literal('exists'), value: z.boolean() }),
]);

const approvers = z.array(scope).min(1).max(32);
const ttlSeconds = z.int().min(1).max(604_800);

const approval = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('never') }),
  z.strictObject({ mode: z.literal('always'), approvers, ttl_seconds: ttlSeconds.optional() }),
  z.strictObject({
    mode: z.literal('when'),
    when: z.array(condition).min(1).max(32),
    approvers,
    ttl_seconds: ttlSeconds.optional(),
  }),
]);

const cost = z.union([
  z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  z.strictObject({ input: fieldPath, default: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional() }),
]);

const tool = z.strictObject({
  description: z.string().max(2000).optional(),
  input: jsonSchema,
  output: jsonSchema.optional(),
  approval: approval.optional(),
  effects: z.record(effectName, cost).optional(),
});

const budget = z
  .strictObject({
    effect: effectName.optional(),
    tool: toolName.optional(),
    limit: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    window: z.union([
      z.int().min(1).max(31_622_400),
      z.string().regex(WINDOW, 'must be like "30s", "5m", "1h" or "1d"'),
    ]),
    per: z.enum(['principal', 'session']).optional(),
  })
  .refine((b) => (b.effect === undefined) !== (b.tool === undefined), {
    message: 'must name exactly one of "effect" or "tool"',
  });

/**
 * The contract file format, as a zod schema. A contract is one JSON or YAML document per role.
 * Parse with `contractSchema.safeParse(data)`; the registry and the CLI do this for you, and then
 * check what a schema cannot say alone (bases, conflicts, budgets that name unknown effects, JSON Schemas).
 *
 * @example
 * ```ts
 * import { contractSchema } from '@amas/contracts';
 * const result = contractSchema.safeParse({ name: 'reader', version: '1.0.0', description: 'Reads', tools: {} });
 * if (!result.success) console.error(result.error.issues);
 * ```
 */
export const contractSchema = z.strictObject({
  $schema: z.string().optional(),
  name: roleName,
  version: z.string().regex(SEMVER, 'must be a semantic version such as "1.0.0"'),
  description: z.string().max(2000),
  extends: roleName.optional(),
  abstract: z.boolean().optional(),
  tools: z.record(toolName, tool).optional(),
  budgets: z.array(budget).max(256).optional(),
});

/** A contract as written in a file, after the format check (see {@link contractSchema}). */
export type ContractDocument = z.infer<typeof contractSchema>;
/** A tool entry of a {@link ContractDocument}. */
export type ToolDocument = z.infer<typeof tool>;
/** An approval rule of a tool: never (the default), always, or when any condition matches the input. */
export type ApprovalRule = z.infer<typeof approval>;
/** A condition on the tool input, evaluated the same way by this package and by the Rego policy. */
export type Condition = z.infer<typeof condition>;
/** A side-effect budget of a {@link ContractDocument}. */
export type BudgetDocument = z.infer<typeof budget>;
/** What one call of a tool spends of an effect: a constant, or an integer read from the input. */
export type EffectCost = z.infer<typeof cost>;

/**
 * The JSON Schema (draft-07) of the contract file format, for editors and other validators.
 * `amas-contracts schema` prints it.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { contractJsonSchema } from '@amas/contracts';
 * writeFileSync('contract.schema.json', JSON.stringify(contractJsonSchema(), null, 2));
 * ```
 */
export function contractJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(contractSchema, { target: 'draft-07', io: 'input', unrepresentable: 'any' }),
    title: 'AMAS role contract',
  };
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A window of a budget (`"1h"` or a number of seconds) in milliseconds. */
export function windowMs(window: string | number): number {
  if (typeof window === 'number') return window * 1000;
  return Number(window.slice(0, -1)) * (UNIT_MS[window.slice(-1)] ?? Number.NaN);
}
