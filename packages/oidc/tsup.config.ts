import { packageBuild } from '../../tsup.preset.js';

export default packageBuild({
  index: 'src/index.ts',
  express: 'src/express.ts',
  koa: 'src/koa.ts',
  testing: 'src/testing.ts',
});
