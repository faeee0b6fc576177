// Helper of opa.bench.mjs: runs the @amas/opa test server (OPA-compatible, shipped tool-access policy,
// policies/roles.json) in its own process, so it does not share an event loop with what is measured.
// Talks to the parent over IPC: { stats }, { reset }, { fault }.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOpaTestServer } from '@amas/opa/testing';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const opa = await startOpaTestServer({ dataFile: join(root, 'policies', 'roles.json') });
process.send?.({ ready: opa.url });
process.on('message', async (msg) => {
  if (msg.stats) process.send?.({ stats: opa.stats() });
  if (msg.reset) {
    opa.resetStats();
    process.send?.({ reset: true });
  }
  if ('fault' in msg) {
    await opa.fault(msg.fault);
    process.send?.({ fault: true });
  }
  if (msg.close) {
    await opa.close();
    process.exit(0);
  }
});
