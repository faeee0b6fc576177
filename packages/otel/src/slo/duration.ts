const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds in a simple Prometheus duration (`30s`, `5m`, `1h`, `3d`, `4w`), or `undefined`. */
export function parseDuration(value: string): number | undefined {
  const m = /^([1-9]\d{0,5})([smhdw])$/.exec(value);
  if (m === null) return undefined;
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}
