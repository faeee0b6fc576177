import { defineConfig, type Options } from 'tsup';

/**
 * The one build every package shares: ESM and CommonJS, with `.d.ts` and `.d.cts`,
 * one entry per public subpath, dependencies and peers left external.
 */
export function packageBuild(entry: Record<string, string>, extra: Partial<Options> = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    target: 'node20',
    platform: 'node',
    dts: { compilerOptions: { ignoreDeprecations: '6.0' } },
    sourcemap: true,
    clean: true,
    // Shared code lives in one chunk per format, so each format holds one copy of module state.
    splitting: true,
    treeshake: false,
    ...extra,
  });
}
