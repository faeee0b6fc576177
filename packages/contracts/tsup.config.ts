import { cpSync } from 'node:fs';
import { packageBuild } from '../../tsup.preset.js';

export default packageBuild(
  {
    index: 'src/index.ts',
    express: 'src/express.ts',
    koa: 'src/koa.ts',
    cli: 'src/cli.ts',
  },
  {
    // The predefined role contracts ship as files in dist/roles; the CommonJS build needs import.meta.url.
    shims: true,
    onSuccess: async () => {
      cpSync('roles', 'dist/roles', { recursive: true });
    },
  },
);
