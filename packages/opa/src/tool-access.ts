import { OpaError } from './errors.js';
import type { ToolAccessRequest } from './types.js';

/**
 * The header a client sends when it retries an escalated call with its approval id.
 *
 * @example
 * ```ts
 * await fetch(url, { method: 'POST', headers: { [APPROVAL_HEADER]: approvalId }, body });
 * ```
 */
export const APPROVAL_HEADER = 'amas-approval-id';

/**
 * The default Data API path of the shipped tool-access policy (`package amas.tool_access`, rule `decision`).
 *
 * @example
 * ```ts
 * await client.evaluate(TOOL_ACCESS_PATH, toolAccessInput({ agentRole, toolName }));
 * ```
 */
export const TOOL_ACCESS_PATH = 'amas/tool_access/decision';

const MAX_NAME = 200;

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/**
 * Builds the documented tool-access policy input (`agent_role`, `tool_name`, `input`, `subject`)
 * from a {@link ToolAccessRequest}, and refuses malformed requests with {@link OpaError}
 * `input_invalid` before anything is sent.
 *
 * @example
 * ```ts
 * toolAccessInput({ agentRole: 'security_auditor', toolName: 'run_scan', input: { mode: 'active' } });
 * // { agent_role: 'security_auditor', tool_name: 'run_scan', input: { mode: 'active' } }
 * ```
 */
export function toolAccessInput(request: ToolAccessRequest): Record<string, unknown> {
  const r = request as Partial<ToolAccessRequest> | undefined;
  const name = (v: unknown, what: string) => {
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_NAME) {
      throw new OpaError(
        'input_invalid',
        `${what} must be a non-empty string of at most ${MAX_NAME} characters`,
      );
    }
    return v;
  };
  const agentRole = name(r?.agentRole, 'agentRole');
  const toolName = name(r?.toolName, 'toolName');
  if (r?.input !== undefined && !isPlainObject(r.input)) {
    throw new OpaError('input_invalid', 'the tool input must be a JSON object');
  }
  const out: Record<string, unknown> = { agent_role: agentRole, tool_name: toolName, input: r?.input ?? {} };
  if (r?.subject !== undefined) {
    const s = r.subject;
    if (
      typeof s?.sub !== 'string' ||
      (s.scopes !== undefined && !(Array.isArray(s.scopes) && s.scopes.every((x) => typeof x === 'string')))
    ) {
      throw new OpaError('input_invalid', 'the subject must be { sub: string, scopes?: string[] }');
    }
    out.subject = { sub: s.sub, ...(s.scopes ? { scopes: [...s.scopes] } : {}) };
  }
  return out;
}
