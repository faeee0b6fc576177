import { readFileSync } from 'node:fs';
import { packageBuild } from '../../tsup.preset.js';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export default packageBuild(
  {
    index: 'src/index.ts',
    express: 'src/express.ts',
    koa: 'src/koa.ts',
    register: 'src/register.ts',
    testing: 'src/testing.ts',
    cli: 'src/cli.ts',
  },
  {
    // `import.meta.url` in the CommonJS build (to resolve optional instrumentation packages lazily).
    shims: true,
    define: { __AMAS_OTEL_VERSION__: JSON.stringify(version) },
  },
);
