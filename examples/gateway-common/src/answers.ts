import type { GatewayServices } from './services.js';
import { type ToolHandler, ToolInputError } from './tools/index.js';

/** An HTTP answer both adapters can send as it is. */
export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * Runs a tool whose call every check allowed. A tool that refuses its input (a path outside the
 * sandbox, a host outside the scan scope) answers 422; any other failure is a 500 without details.
 *
 * @example
 * ```ts
 * const answer = await runTool(services.toolbox, 'read_file', { path: 'README.md' });
 * ```
 */
export async function runTool(
  toolbox: ReadonlyMap<string, ToolHandler>,
  name: string,
  input: unknown,
  log: (line: string) => void = console.error,
): Promise<Answer> {
  const handler = toolbox.get(name);
  if (!handler) return toolNotImplemented(name);
  try {
    return { status: 200, body: (await handler(input as never)) as Record<string, unknown> };
  } catch (err) {
    if (err instanceof ToolInputError)
      return { status: 422, body: { error: 'tool_input_rejected', message: err.message } };
    log(`tool ${name} failed: ${err instanceof Error ? err.message : String(err)}`);
    return { status: 500, body: { error: 'tool_failed', message: 'The tool failed.' } };
  }
}

/** 501: the role's contract allows the tool, but this gateway has no handler for it. */
export function toolNotImplemented(name: string): Answer {
  return {
    status: 501,
    body: { error: 'tool_not_implemented', message: `This gateway does not run the tool "${name}".` },
  };
}

/** The readiness answer: the key source, the policy engine and where state lives. */
export async function readiness(services: GatewayServices): Promise<Answer & { ready: boolean }> {
  const identity = services.verifier.health();
  const policyOk = (await services.enforcer.health().catch(() => ({ healthy: false }))).healthy;
  const ready = identity.ready && policyOk;
  return {
    ready,
    status: ready ? 200 : 503,
    body: {
      ready,
      identity: { status: identity.status },
      policy: { healthy: policyOk, breaker: services.enforcer.breakerState() },
      state: services.description.state,
    },
  };
}
