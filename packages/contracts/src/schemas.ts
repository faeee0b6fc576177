import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { pointerSegment } from './limits.js';
import type { FieldError } from './types.js';

type AddFormats = (ajv: Ajv, options?: { mode?: 'fast' | 'full' }) => Ajv;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ??
  addFormatsModule) as unknown as AddFormats;

/** How tool schemas are compiled. Nothing here lets input change what a schema does. */
export interface SchemaOptions {
  /** Report every failing field (true, the default) or stop at the first. */
  readonly allErrors: boolean;
  /** `ajv-formats` mode: `full` (default), `fast`, or false for no formats (unknown `format` fails at load). */
  readonly formats: 'full' | 'fast' | false;
}

/**
 * One ajv instance per registry. Settings that would let data steer validation are off and cannot be
 * turned on: no `$data`, no `useDefaults`, no `coerceTypes`, no `removeAdditional`, no remote `$ref`
 * (there is no `loadSchema`, so an unknown reference fails at load). Unknown keywords fail at load too.
 */
export function createAjv(options: SchemaOptions): Ajv {
  const ajv = new Ajv({
    allErrors: options.allErrors,
    strictSchema: true,
    strictNumbers: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
    $data: false,
    useDefaults: false,
    coerceTypes: false,
    removeAdditional: false,
    validateSchema: true,
    addUsedSchema: false,
    logger: false,
  });
  if (options.formats) addFormats(ajv, { mode: options.formats });
  return ajv;
}

/** Compiles a schema, or returns why it cannot be compiled. */
export function compileSchema(ajv: Ajv, schema: unknown): ValidateFunction | string {
  try {
    return ajv.compile(schema as object | boolean);
  } catch (err) {
    return (err as Error).message.split('\n')[0] ?? 'cannot compile the schema';
  }
}

const MAX_REPORTED = 20;

/** Turns ajv errors into readable per-field errors, without echoing input values. */
export function fieldErrors(errors: readonly ErrorObject[] | null | undefined, what: string): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors ?? []) {
    if (out.length >= MAX_REPORTED) break;
    let path = e.instancePath;
    if (e.keyword === 'required') path += `/${pointerSegment(String(e.params.missingProperty))}`;
    if (e.keyword === 'additionalProperties')
      path += `/${pointerSegment(String(e.params.additionalProperty))}`;
    const field = path === '' ? what : path;
    const message =
      e.keyword === 'required'
        ? `${field} is required`
        : e.keyword === 'additionalProperties'
          ? `${field} is not allowed`
          : `${field} ${e.message ?? 'is invalid'}`;
    out.push({ path: path.length > 200 ? `${path.slice(0, 200)}…` : path, message });
  }
  return out;
}
