import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// What every published package promises its users, checked on the manifests and on the build output
// (`pnpm test` builds first). publint and attw (`pnpm check:pkg`) check the rest.
const root = resolve(import.meta.dirname, '..');
const packageDirs = readdirSync(join(root, 'packages'));

interface Manifest {
  name: string;
  private?: boolean;
  type: string;
  sideEffects: false | string[];
  files: string[];
  engines: { node: string };
  exports: Record<string, string | { import: Record<string, string>; require: Record<string, string> }>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  dependencies?: Record<string, string>;
  publishConfig?: { access?: string };
}

const read = (dir: string): Manifest =>
  JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as Manifest;

describe.each(packageDirs)('packages/%s', (dir) => {
  const pkg = read(dir);

  it('is a public, side-effect-free ESM package that ships only dist', () => {
    expect(pkg.name).toBe(`@amas/${dir}`);
    expect(pkg.private).toBeUndefined();
    expect(pkg.type).toBe('module');
    // Only an entry that exists for its side effects may be listed (`@amas/otel/register`, which starts
    // tracing when imported); everything else can be tree-shaken.
    if (pkg.sideEffects !== false) {
      const registerEntry = (pkg.exports['./register'] ?? {}) as {
        import?: { default?: string };
        require?: { default?: string };
      };
      expect(pkg.sideEffects).toEqual([registerEntry.import?.default, registerEntry.require?.default]);
    }
    expect(pkg.files).toEqual(['dist']);
    expect(pkg.publishConfig?.access).toBe('public');
    expect(pkg.engines.node).toBe('^20.19.0 || >=22.12.0');
  });

  it('exports the core and the express and koa adapters', () => {
    expect(Object.keys(pkg.exports)).toEqual(
      expect.arrayContaining(['.', './express', './koa', './package.json']),
    );
  });

  it('takes express, koa and the OpenTelemetry API as peers, frameworks optional', () => {
    expect(pkg.peerDependencies['@opentelemetry/api']).toBe('>=1.3.0 <1.10.0');
    expect(pkg.peerDependenciesMeta.express?.optional).toBe(true);
    expect(pkg.peerDependenciesMeta.koa?.optional).toBe(true);
    expect(pkg.dependencies?.express).toBeUndefined();
    expect(pkg.dependencies?.koa).toBeUndefined();
  });

  it('has a README and a CHANGELOG', () => {
    expect(existsSync(join(root, 'packages', dir, 'README.md'))).toBe(true);
    expect(existsSync(join(root, 'packages', dir, 'CHANGELOG.md'))).toBe(true);
  });

  it('builds ESM and CommonJS with types for every entry point', () => {
    for (const [key, target] of Object.entries(pkg.exports)) {
      if (key === './package.json') continue;
      expect(typeof target, key).toBe('object');
      if (typeof target !== 'object') continue;
      const files = [
        target.import.types,
        target.import.default,
        target.require.types,
        target.require.default,
      ];
      expect(files.map((f) => f?.slice(f.lastIndexOf('.')))).toEqual(['.ts', '.js', '.cts', '.cjs']);
      for (const f of files) {
        expect(existsSync(join(root, 'packages', dir, f as string)), `${dir}: ${f}`).toBe(true);
      }
    }
  });
});
