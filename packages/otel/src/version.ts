declare const __AMAS_OTEL_VERSION__: string | undefined;

/**
 * The version of `@amas/otel`, written in at build time (`0.0.0-dev` when running from source). It is also
 * the resource attribute `telemetry.distro.version` and the version of the `@amas/otel` tracer.
 *
 * @example
 * ```ts
 * import { VERSION } from '@amas/otel';
 * console.log(`tracing with @amas/otel ${VERSION}`);
 * ```
 */
export const VERSION: string =
  typeof __AMAS_OTEL_VERSION__ === 'string' ? __AMAS_OTEL_VERSION__ : '0.0.0-dev';
