export { authorizationAnswer, errorAnswer } from './answers.js';
export {
  type ApprovalRouteRequest,
  type ApprovalRoutesOptions,
  handleApprovalRoute,
  isJsonContentType,
} from './approval-routes.js';
export { createMemoryApprovalStore, type MemoryApprovalStoreOptions } from './approval-store-memory.js';
export { createRedisApprovalStore, type RedisApprovalStoreOptions } from './approval-store-redis.js';
export { type Approvals, type ApprovalsOptions, createApprovals } from './approvals.js';
export { type BreakerState, type CircuitBreaker, createBreaker } from './breaker.js';
export { createDecisionCache, type DecisionCache } from './cache.js';
export { createOpaClient, normalizePath, type OpaClient } from './client.js';
export { createEnforcer, type Enforcer, type EnforcerOptions } from './enforcer.js';
export type { OpaErrorCode, OpaErrorOptions } from './errors.js';
export { isOpaError, OpaError, OpaErrorStatus } from './errors.js';
export { createGuard, type GuardOptions, type GuardResult, toPrincipal } from './guard.js';
export { actionHash, canonicalJson } from './hash.js';
export { approvalPrincipal, isValidPrincipal, MAX_ISSUER_LENGTH, samePrincipal } from './principal.js';
export { readJsonBody } from './read-body.js';
export { APPROVAL_HEADER, TOOL_ACCESS_PATH, toolAccessInput } from './tool-access.js';
export type {
  AllowDecision,
  ApprovalAuditEntry,
  ApprovalAuditEvent,
  ApprovalCreateLimits,
  ApprovalCreateResult,
  ApprovalPrincipal,
  ApprovalRecord,
  ApprovalRequirement,
  ApprovalStatus,
  ApprovalStore,
  ApprovalStoreResult,
  ApprovalView,
  Authorization,
  AuthorizeRequest,
  DecideOptions,
  Decision,
  DecisionLogEvent,
  DenyDecision,
  EscalateDecision,
  Fallback,
  HealthStatus,
  HttpAnswer,
  OpaErrorDetail,
  OpaResponse,
  Principal,
  Provenance,
  ToolAccessRequest,
  UnavailableCause,
  UnavailableDecision,
  UnavailableKind,
  UndefinedDecision,
} from './types.js';
