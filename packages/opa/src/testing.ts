export type {
  OpaTestServer,
  OpaTestServerOptions,
  OpaTestServerStats,
  TestFault,
  TestRule,
} from './test-server.js';
export { BuiltinError, startOpaTestServer } from './test-server.js';
export type { ToolAccessDecisionDocument } from './tool-access-policy.js';
export { evaluateToolAccess } from './tool-access-policy.js';
