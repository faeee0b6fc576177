/**
 * Reads `OTEL_*` variables the way the OpenTelemetry specification says: an empty value is unset; a
 * boolean is true only for a case-insensitive `"true"`; enums are case-insensitive; a value that does not
 * parse is ignored with a warning, never guessed.
 */
export interface EnvReader {
  string(name: string): string | undefined;
  boolean(name: string): boolean | undefined;
  integer(name: string, min: number, max?: number): number | undefined;
  ratio(name: string): number | undefined;
  enumOf<T extends string>(name: string, values: readonly T[]): T | undefined;
  /** A comma-separated list, each entry checked against `values` (unknown entries are warned about and dropped). */
  listOf<T extends string>(
    name: string,
    values: readonly T[],
    unsupported?: readonly string[],
  ): T[] | undefined;
  /** `key=value` pairs separated by commas, values percent-decoded (W3C Baggage octets). */
  keyValues(name: string): Record<string, string> | undefined;
  /** An absolute http(s) URL. */
  url(name: string): string | undefined;
}

export function createEnvReader(
  env: Record<string, string | undefined>,
  warn: (message: string) => void,
): EnvReader {
  const read = (name: string): string | undefined => {
    const raw = env[name];
    if (raw === undefined) return undefined;
    const value = raw.trim();
    return value === '' ? undefined : value;
  };
  const invalid = (name: string, expected: string): undefined => {
    warn(`${name} is ignored: expected ${expected}`);
    return undefined;
  };

  return {
    string: read,
    boolean(name) {
      const value = read(name);
      if (value === undefined) return undefined;
      const lower = value.toLowerCase();
      if (lower === 'true') return true;
      if (lower !== 'false')
        warn(`${name}=${JSON.stringify(value)} is read as false: only "true" means true`);
      return false;
    },
    integer(name, min, max = 2 ** 31 - 1) {
      const value = read(name);
      if (value === undefined) return undefined;
      const n = /^[+]?\d+$/.test(value) ? Number(value) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        return invalid(name, `an integer from ${min} to ${max}`);
      }
      return n;
    },
    ratio(name) {
      const value = read(name);
      if (value === undefined) return undefined;
      const n = /^[+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(value) ? Number(value) : Number.NaN;
      if (!(n >= 0 && n <= 1)) return invalid(name, 'a number from 0 to 1');
      return n;
    },
    enumOf(name, values) {
      const value = read(name)?.toLowerCase();
      if (value === undefined) return undefined;
      const found = values.find((v) => v === value);
      return found ?? invalid(name, `one of ${values.join(', ')}`);
    },
    listOf(name, values, unsupported = []) {
      const value = read(name);
      if (value === undefined) return undefined;
      const out: (typeof values)[number][] = [];
      for (const entry of value.split(',')) {
        const item = entry.trim().toLowerCase();
        if (item === '') continue;
        const found = values.find((v) => v === item);
        if (found !== undefined) {
          if (!out.includes(found)) out.push(found);
        } else if (unsupported.includes(item)) {
          warn(`${name}: "${item}" needs a package @amas/otel does not load; it is ignored`);
        } else {
          warn(`${name}: unknown value "${item}" is ignored (known: ${values.join(', ')})`);
        }
      }
      return out;
    },
    keyValues(name) {
      const value = read(name);
      if (value === undefined) return undefined;
      const out: Record<string, string> = {};
      for (const entry of value.split(',')) {
        if (entry.trim() === '') continue;
        const eq = entry.indexOf('=');
        const key = eq > 0 ? entry.slice(0, eq).trim() : '';
        let decoded: string | undefined;
        try {
          decoded = eq > 0 ? decodeURIComponent(entry.slice(eq + 1).trim()) : undefined;
        } catch {
          decoded = undefined;
        }
        // The specification says to discard the whole variable when one entry is malformed.
        if (key === '' || decoded === undefined || !/^[\x21-\x7e]+$/.test(key)) {
          return invalid(name, 'comma-separated key=value pairs with percent-encoded values');
        }
        out[key] = decoded;
      }
      return out;
    },
    url(name) {
      const value = read(name);
      if (value === undefined) return undefined;
      return isHttpUrl(value) ? value : invalid(name, 'an absolute http:// or https:// URL');
    },
  };
}

export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
