import { defineConfig } from 'vitest/config';

// One test run for the whole repository: every package and example is its own project,
// with its own vitest.config.ts; `test/` holds repository-level checks (workflows, layout).
export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', 'examples/*/vitest.config.ts', 'test/vitest.config.ts'],
  },
});
