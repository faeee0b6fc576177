// The inputs of the @amas/contracts benchmark, shared by its in-process part (contracts-micro.mjs) and its
// Redis part (contracts.bench.mjs): one typical tool, its contract, and the floor and zod equivalents.
import { Ajv } from 'ajv';
import * as z from 'zod';

// A typical tool: a code search with three fields, strict schema; the budgeted variant adds two
// budgets (a call counter and a named effect read from the input) whose limits are never reached.
export const searchInput = {
  type: 'object',
  additionalProperties: false,
  required: ['query'],
  properties: {
    query: { type: 'string', minLength: 1, maxLength: 1000 },
    path: { type: 'string', minLength: 1, maxLength: 4096 },
    max_results: { type: 'integer', minimum: 1, maximum: 1000 },
  },
};

export const contract = {
  name: 'code_reviewer',
  version: '1.0.0',
  description: 'Benchmark contract.',
  tools: {
    search_code: { input: searchInput },
    search_budgeted: {
      input: searchInput,
      effects: { 'search.results': { input: 'max_results', default: 100 } },
    },
  },
  budgets: [
    { tool: 'search_budgeted', limit: 1e12, window: '1h' },
    { effect: 'search.results', limit: 1e15, window: '1h' },
  ],
};

/** The one input every case checks, the same object every time. */
export const input = { query: 'createRegistry', path: 'packages/contracts/src', max_results: 50 };

/** Inputs that every case must refuse, checked before anything is timed. */
export const invalidInputs = [
  {},
  { query: '' },
  { query: 'x', max_results: 0 },
  { query: 'x', extra: true },
  { query: 42 },
];

/** 1,000 callers, so the budgeted case keeps 2,000 live counters, not one hot one. */
export const PRINCIPALS = Array.from({ length: 1000 }, (_, i) => `agent-${i}`);

// The floor: what any implementation must do at least (find the tool, validate the input), with the
// same ajv settings the registry uses for this schema (every error reported).
const floorValidate = new Ajv({ allErrors: true }).compile(searchInput);
const floorRoles = new Map([['code_reviewer', new Map([['search_code', floorValidate]])]]);
export const floor = (role, tool, data) => {
  const v = floorRoles.get(role)?.get(tool);
  return v?.(data) === true;
};

// The same schema in zod, behind the same lookup.
const zodSchema = z.strictObject({
  query: z.string().min(1).max(1000),
  path: z.string().min(1).max(4096).optional(),
  max_results: z.int().min(1).max(1000).optional(),
});
const zodRoles = new Map([['code_reviewer', new Map([['search_code', zodSchema]])]]);
export const zodCheck = (role, tool, data) => {
  const s = zodRoles.get(role)?.get(tool);
  return s?.safeParse(data).success === true;
};
