// The route template (`http.route`) of an Express request, read from the router tree after the fact,
// without patching Express. Express 5 (router >= 2.3) keeps each layer's path as written (`rawPath`);
// Express 4 keeps only a regular expression, whose source is turned back into the path it came from.
// When that is not possible (regular-expression paths, a path array, a router mounted at several
// different paths), there is no `http.route` rather than a wrong or high-cardinality one.

interface Layer {
  route?: unknown;
  rawPath?: unknown;
  regexp?: RegExp & { fast_slash?: boolean; fast_star?: boolean };
  keys?: { name: string | number }[];
  handle?: { stack?: unknown };
}
interface RouterLike {
  stack: Layer[];
}
interface AppLike {
  _router?: RouterLike;
  router?: RouterLike;
  mountpath?: unknown;
  parent?: AppLike;
}

const byRoute = new WeakMap<object, { app: object; template: string | undefined }>();

/** The route template of the request, e.g. `/api/users/:id`, or `undefined` when none matched or it is ambiguous. */
export function expressRoute(req: { route?: { path?: unknown }; app?: unknown }): string | undefined {
  const route = req.route;
  const app = req.app as AppLike | undefined;
  if (route === undefined || app === undefined || typeof route.path !== 'string') return undefined;
  const cached = byRoute.get(route);
  if (cached !== undefined && cached.app === app) return cached.template;
  const within = templateWithin(routerOf(app), route);
  const prefix = mountPrefix(app);
  const template = within === undefined || prefix === undefined ? undefined : join(prefix, within);
  byRoute.set(route, { app, template });
  return template;
}

function routerOf(app: AppLike): RouterLike | undefined {
  if (app._router !== undefined) return app._router;
  try {
    return app.router;
  } catch {
    // Express 4 throws on `app.router`.
    return undefined;
  }
}

function mountPrefix(app: AppLike): string | undefined {
  let prefix = '';
  for (let a: AppLike | undefined = app; a?.parent !== undefined; a = a.parent) {
    if (typeof a.mountpath !== 'string') return undefined;
    prefix = join(a.mountpath === '/' ? '' : a.mountpath, prefix);
  }
  return prefix;
}

function templateWithin(router: RouterLike | undefined, route: { path?: unknown }): string | undefined {
  if (router === undefined || !Array.isArray(router.stack)) return undefined;
  const found = new Set<string | undefined>();
  collect(router.stack, route, '', found, 0);
  return found.size === 1 ? [...found][0] : undefined;
}

function collect(
  stack: Layer[],
  route: unknown,
  prefix: string,
  found: Set<string | undefined>,
  depth: number,
): void {
  if (depth > 32) return;
  for (const layer of stack) {
    if (layer.route === route) {
      found.add(join(prefix, (route as { path: string }).path));
      continue;
    }
    const sub = layer.handle?.stack;
    if (layer.route !== undefined || !Array.isArray(sub)) continue;
    const mount = layerTemplate(layer);
    // A sub-router whose mount path cannot be read poisons every route below it.
    collect(sub as Layer[], route, mount === undefined ? '\0' : join(prefix, mount), found, depth + 1);
  }
  if (depth === 0) {
    for (const t of found) if (t?.includes('\0')) found.add(undefined);
  }
}

function layerTemplate(layer: Layer): string | undefined {
  if (layer.rawPath !== undefined) return typeof layer.rawPath === 'string' ? layer.rawPath : undefined;
  const re = layer.regexp;
  if (re === undefined) return undefined;
  if (re.fast_slash) return '';
  if (re.fast_star) return '*';
  return fromExpress4Source(re.source, layer.keys ?? []);
}

const PARAM = /\(\?:(\\\.)?(\\\/)?\(\[\^(?:\\\/|\/)(?:\\\.)?\]\+\?\)\)(\?)?/g;

/** Turns the regular expression path-to-regexp 0.1 made from a string path back into that path. */
export function fromExpress4Source(
  source: string,
  keys: readonly { name: string | number }[],
): string | undefined {
  if (!source.startsWith('^')) return undefined;
  let src = source
    .slice(1)
    .replace(/(\\\/\?)?(\(\?=\\\/\|\$\)|\(\?:\\\/\|\$\)|\$)$/, '')
    .replace(/\\\/\?$/, '');
  if (src.includes('|')) return undefined;
  let k = 0;
  let failed = false;
  src = src.replace(PARAM, (_m, dot?: string, slash?: string, optional?: string) => {
    const key = keys[k++];
    if (key === undefined || typeof key.name !== 'string') failed = true;
    return `${dot ? '.' : ''}${slash ? '/' : ''}:${String(key?.name)}${optional ?? ''}`;
  });
  src = src.replace(/\(\.\*\)/g, () => {
    k++;
    return '*';
  });
  const plain = src.replace(/:\w+\?/g, ':p');
  if (failed || /[()[\]|+^$]/.test(plain) || /\\[^./\-_~]/.test(plain)) return undefined;
  return src.replace(/\\(.)/g, '$1');
}

function join(a: string, b: string): string {
  if (a === '' || a === '/') return b === '' ? '/' : b;
  if (b === '' || b === '/') return a;
  return `${a.endsWith('/') ? a.slice(0, -1) : a}${b.startsWith('/') ? b : `/${b}`}`;
}
