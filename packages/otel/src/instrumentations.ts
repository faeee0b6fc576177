import * as nodeModule from 'node:module';
import { sep } from 'node:path';
import type { TracerProvider } from '@opentelemetry/api';
import { TelemetryError } from './errors.js';
import type { InstrumentationName } from './types.js';

const localRequire = nodeModule.createRequire(import.meta.url);
const ESM_HOOK = Symbol.for('@amas/otel/esm-loader-hook');
const BASE_PACKAGE = '@opentelemetry/instrumentation';

interface Known {
  readonly pkg: string;
  readonly className: string;
  readonly version: string;
  /** Module names the instrumentation patches (and the ESM loader hook must intercept). */
  readonly modules: readonly string[];
}

const KNOWN: Readonly<Record<InstrumentationName, Known>> = {
  http: {
    pkg: '@opentelemetry/instrumentation-http',
    className: 'HttpInstrumentation',
    version: '0.223',
    modules: ['http', 'https'],
  },
  express: {
    pkg: '@opentelemetry/instrumentation-express',
    className: 'ExpressInstrumentation',
    version: '0.71',
    modules: ['express'],
  },
  koa: {
    pkg: '@opentelemetry/instrumentation-koa',
    className: 'KoaInstrumentation',
    version: '0.71',
    modules: ['koa'],
  },
  ioredis: {
    pkg: '@opentelemetry/instrumentation-ioredis',
    className: 'IORedisInstrumentation',
    version: '0.71',
    modules: ['ioredis'],
  },
};

type InstrumentationCtor = new (config?: Record<string, unknown>) => unknown;

export interface InstrumentationContext {
  readonly provider: TracerProvider;
  readonly ignorePaths: readonly (string | RegExp)[];
  readonly esmLoaderHook: boolean;
  /** Named through `OTEL_NODE_ENABLED_INSTRUMENTATIONS` (a missing package is then a warning, not an error). */
  readonly fromEnv: boolean;
  readonly warn: (message: string) => void;
  /** How packages are loaded (tests replace it to simulate a package that is not installed). */
  readonly load?: (id: string) => unknown;
}

/**
 * Loads the named instrumentation packages (only those, only now), enables them and returns a function
 * that disables them. A package named in code that is not installed is a `config_invalid` error that
 * says what to install; named through the environment, it is a warning.
 */
export function enableInstrumentations(
  names: readonly InstrumentationName[],
  ctx: InstrumentationContext,
): () => void {
  if (names.length === 0) return () => {};
  const missing = (pkg: string, version: string, name?: string): undefined => {
    const message = `${name ? `instrumentation "${name}" needs` : 'auto-instrumentation needs'} ${pkg}, which is not installed: run \`npm install ${pkg}@${version}\`${name ? ` or remove "${name}" from the instrumentations` : ''}`;
    if (!ctx.fromEnv) throw new TelemetryError('config_invalid', message);
    ctx.warn(`${message}; continuing without it`);
    return undefined;
  };
  const load = ctx.load ?? tryRequire;
  const base = load(BASE_PACKAGE) as
    | {
        registerInstrumentations(o: {
          instrumentations: unknown[];
          tracerProvider: TracerProvider;
        }): () => void;
      }
    | undefined;
  if (base === undefined) {
    missing(BASE_PACKAGE, '0.223');
    return () => {};
  }

  const chosen: [InstrumentationName, InstrumentationCtor][] = [];
  for (const name of names) {
    const known = KNOWN[name];
    const ctor = (load(known.pkg) as Record<string, InstrumentationCtor> | undefined)?.[known.className];
    if (ctor === undefined) missing(known.pkg, known.version, name);
    else chosen.push([name, ctor]);
  }
  if (chosen.length === 0) return () => {};

  for (const [name] of chosen) {
    const late = loadedAlready(KNOWN[name].modules);
    if (late) {
      ctx.warn(
        `${late} was loaded before tracing started, so the "${name}" instrumentation cannot patch it and its spans will be missing. ` +
          `Start tracing first: with ESM run \`node --import @amas/otel/register app.js\` (or --import a file that calls setupTelemetry); ` +
          `with CommonJS require('@amas/otel/register') or call setupTelemetry() before anything requires ${late}.`,
      );
    }
  }
  if (ctx.esmLoaderHook)
    registerEsmLoaderHook(
      chosen.flatMap(([name]) => KNOWN[name].modules),
      ctx.warn,
    );

  const instances = chosen.map(([name, Ctor]) => {
    if (name !== 'http') return new Ctor();
    const ignore = ctx.ignorePaths;
    return new Ctor({
      ignoreIncomingRequestHook: (req: { url?: string }) => matchesPath(pathOf(req.url ?? '/'), ignore),
    });
  });
  const disable = base.registerInstrumentations({
    instrumentations: instances,
    tracerProvider: ctx.provider,
  });
  if (chosen.some(([name]) => name === 'http')) {
    // The http instrumentation patches on the next require of `http`; requiring it here patches
    // `Server.prototype.emit` even when the application loaded `http` before tracing started.
    localRequire('node:http');
    localRequire('node:https');
  }
  return disable;
}

function tryRequire(id: string): unknown {
  try {
    return localRequire(id);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

/** The first of `modules` (packages, not built-ins) that is already in the module cache, if any. */
function loadedAlready(modules: readonly string[]): string | undefined {
  const keys = Object.keys(localRequire.cache);
  return modules.find((m) => {
    if (m === 'http' || m === 'https') return false;
    const needle = `${sep}node_modules${sep}${m}${sep}`;
    return keys.some((k) => k.includes(needle));
  });
}

function registerEsmLoaderHook(modules: string[], warn: (message: string) => void): void {
  const g = globalThis as Record<symbol, unknown>;
  if (g[ESM_HOOK] || typeof nodeModule.register !== 'function') return;
  try {
    nodeModule.register(`${BASE_PACKAGE}/hook.mjs`, import.meta.url, { data: { include: modules } });
    g[ESM_HOOK] = true;
  } catch (err) {
    warn(
      `the ESM loader hook could not be registered (${(err as Error).message}); ESM imports are not instrumented`,
    );
  }
}

/**
 * The path of a request target, without its query or fragment (`url.path`). An absolute-form target
 * (`GET http://host/path`, as sent to proxies) gives its path, not the scheme and host.
 */
export function pathOf(url: string): string {
  let path = url;
  if (path.charCodeAt(0) !== 47 /* / */) {
    const origin = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(path);
    if (origin !== null) path = path.slice(origin[0].length);
  }
  let end = path.indexOf('?');
  const hash = path.indexOf('#');
  if (hash !== -1 && (end === -1 || hash < end)) end = hash;
  if (end !== -1) path = path.slice(0, end);
  return path === '' ? '/' : path;
}

export function matchesPath(path: string, patterns: readonly (string | RegExp)[]): boolean {
  for (const p of patterns) {
    if (typeof p === 'string' ? p === path : p.test(path)) return true;
  }
  return false;
}
