/**
 * The clients of the embedded test issuer: one agent per role, and the humans who approve. In a real
 * deployment these are clients of your OpenID Provider; the gateway only reads the token's
 * `amas_role` claim (the role an agent acts as) and its scopes.
 */
export const DEMO_CLIENTS = Object.freeze({
  'reviewer-agent': {
    secret: 'reviewer-agent-secret',
    scopes: ['agents:invoke'],
    claims: { amas_role: 'code_reviewer' },
  },
  'auditor-agent': {
    secret: 'auditor-agent-secret',
    scopes: ['agents:invoke'],
    claims: { amas_role: 'security_auditor' },
  },
  'orchestrator-agent': {
    secret: 'orchestrator-agent-secret',
    scopes: ['agents:invoke'],
    claims: { amas_role: 'orchestrator' },
  },
  'security-lead': {
    secret: 'security-lead-secret',
    scopes: ['approvals:security'],
    claims: {},
  },
  'platform-admin': {
    secret: 'platform-admin-secret',
    scopes: ['agents:invoke', 'approvals:admin'],
    claims: { amas_role: 'admin' },
  },
});

/** The `client_id`s of {@link DEMO_CLIENTS}. */
export type DemoClientId = keyof typeof DEMO_CLIENTS;

/** The scope every agent needs to call a tool through the gateway. */
export const INVOKE_SCOPE = 'agents:invoke';
