import { copyFileSync, mkdirSync } from 'node:fs';
import { packageBuild } from '../../tsup.preset.js';

// The shipped policy and role data go into the package too (dist/policies), so that users can run a
// real OPA with them: `opa run --server node_modules/@amas/opa/dist/policies`.
export default packageBuild(
  {
    index: 'src/index.ts',
    express: 'src/express.ts',
    koa: 'src/koa.ts',
    testing: 'src/testing.ts',
  },
  {
    async onSuccess() {
      mkdirSync('dist/policies', { recursive: true });
      for (const f of ['tool_access_policy.rego', 'roles.json'])
        copyFileSync(`../../policies/${f}`, `dist/policies/${f}`);
    },
  },
);
