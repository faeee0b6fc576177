import { DEMO_CLIENTS, type DemoClientId } from './identities.js';

/** Where the walk-through finds the gateway and the token endpoint of its issuer. */
export interface WalkthroughOptions {
  /** The gateway, for example `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** The issuer's OAuth 2.0 token endpoint (`client_credentials`). */
  tokenEndpoint: string;
  /** Where each line goes (default `console.log`). */
  print?: (line: string) => void;
}

/** One step of the story: what was asked, what came back, and whether that was the expected answer. */
export interface StepResult {
  title: string;
  status: number;
  code?: string;
  expected: number;
  ok: boolean;
  body: Record<string, unknown>;
}

interface Call {
  as?: DemoClientId;
  method?: 'GET' | 'POST';
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

async function fetchToken(tokenEndpoint: string, client: DemoClientId): Promise<string> {
  const res = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: client,
      client_secret: DEMO_CLIENTS[client].secret,
    }),
  });
  const json = (await res.json()) as { access_token?: string };
  if (!res.ok || typeof json.access_token !== 'string')
    throw new Error(`no token for ${client}: ${res.status}`);
  return json.access_token;
}

function summarise(body: Record<string, unknown>): string {
  const { error, message } = body as { error?: string; message?: string };
  if (error) return `${error}${message ? `: ${message}` : ''}`;
  // The interesting part of a successful answer: analysis totals, scan results, or an approval's state.
  const { totals, ports, status, approved_by: approvedBy } = body as Record<string, unknown>;
  const shown =
    totals ?? ports ?? (status ? { status, ...(approvedBy ? { approved_by: approvedBy } : {}) } : body);
  const text = JSON.stringify(shown);
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

/**
 * The scripted story of the example gateways: tokens for several roles, then an allowed call, denied
 * calls, an invalid input, an exhausted budget, an escalated call, its approval, and the approved call
 * going through. Each step prints what happened and why; the result says whether every answer was the
 * expected one.
 *
 * @example
 * ```ts
 * const steps = await runWalkthrough({ baseUrl, tokenEndpoint: issuer.tokenEndpoint });
 * process.exitCode = steps.every((s) => s.ok) ? 0 : 1;
 * ```
 */
export async function runWalkthrough(options: WalkthroughOptions): Promise<StepResult[]> {
  const print = options.print ?? ((line: string) => console.log(line));
  const tokens = new Map<DemoClientId, string>();
  const results: StepResult[] = [];
  let n = 0;

  const call = async ({ as, method = 'POST', path, body, headers = {} }: Call) => {
    if (as && !tokens.has(as)) tokens.set(as, await fetchToken(options.tokenEndpoint, as));
    const res = await fetch(new URL(path, options.baseUrl), {
      method,
      headers: {
        ...(as ? { authorization: `Bearer ${tokens.get(as)}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      json = { raw: text.slice(0, 200) };
    }
    return { status: res.status, headers: res.headers, body: json };
  };

  const step = async (title: string, request: Call, expected: number, why: string) => {
    n += 1;
    const who = request.as ? `as ${request.as}` : 'without a token';
    print(`\n${n}. ${title}`);
    print(
      `   -> ${request.method ?? 'POST'} ${request.path} ${who}${request.body === undefined ? '' : ` ${JSON.stringify(request.body)}`}`,
    );
    const res = await call(request);
    const ok = res.status === expected;
    print(`   <- ${res.status} ${summarise(res.body)}${ok ? '' : `   (UNEXPECTED: wanted ${expected})`}`);
    print(`   why: ${why}`);
    const code = typeof res.body.error === 'string' ? res.body.error : undefined;
    const result = { title, status: res.status, code, expected, ok, body: res.body };
    results.push(result);
    return { ...result, headers: res.headers };
  };

  print(`AMAS example gateway walk-through against ${options.baseUrl}`);
  print(
    `tokens come from ${options.tokenEndpoint} (client_credentials), one client per agent role and one approver`,
  );

  await step(
    'A call without a token',
    { path: '/v1/agents/code_reviewer/tools/read_file', body: { path: 'agent-service/README.md' } },
    401,
    '@amas/oidc found no bearer token: 401 with a WWW-Authenticate challenge (RFC 6750); nothing else ran.',
  );

  await step(
    'The code reviewer analyses code (allowed)',
    {
      as: 'reviewer-agent',
      path: '/v1/agents/code_reviewer/tools/analyze_code',
      body: { path: 'agent-service/src', analysis: 'complexity' },
    },
    200,
    'token verified; the code_reviewer contract lists analyze_code and the input matches its schema; OPA allows it; the output passed its check.',
  );

  await step(
    'The code reviewer tries a scanner its role does not have (denied)',
    {
      as: 'reviewer-agent',
      path: '/v1/agents/code_reviewer/tools/run_scan',
      body: { target: '127.0.0.1', mode: 'passive' },
    },
    403,
    'the code_reviewer contract does not list run_scan: @amas/contracts denies before OPA is even asked.',
  );

  await step(
    'The code reviewer claims to be a security auditor (denied)',
    {
      as: 'reviewer-agent',
      path: '/v1/agents/security_auditor/tools/read_file',
      body: { path: 'agent-service/README.md' },
    },
    403,
    "an agent acts only as the role its token names (the amas_role claim); the path's role is not that one.",
  );

  await step(
    'The code reviewer sends an input that breaks the schema (invalid)',
    {
      as: 'reviewer-agent',
      path: '/v1/agents/code_reviewer/tools/analyze_code',
      body: { path: 42, analysis: 'vibes' },
    },
    400,
    "the tool's JSON Schema rejects it, with one readable error per field; no budget was spent.",
  );

  print(
    '\n   The code reviewer now reads a file 1 MiB at a time: each call costs 1 MiB of its 10 MiB/hour bytes_read budget.',
  );
  let reads = 0;
  for (;;) {
    const res = await call({
      as: 'reviewer-agent',
      path: '/v1/agents/code_reviewer/tools/read_file',
      body: { path: 'agent-service/src/router.js', max_bytes: 1048576 },
    });
    if (res.status !== 200 || reads >= 20) break;
    reads += 1;
  }
  print(`   ${reads} reads were allowed.`);
  const budget = await step(
    'One more read of 1 MiB (budget exhausted)',
    {
      as: 'reviewer-agent',
      path: '/v1/agents/code_reviewer/tools/read_file',
      body: { path: 'agent-service/src/router.js', max_bytes: 1048576 },
    },
    429,
    'the bytes_read budget of the code_reviewer contract has no room left in this window: 429 with Retry-After.',
  );
  const b = (budget.body.budget ?? {}) as { limit?: number; used?: number; resetsAt?: string };
  if (b.limit !== undefined)
    print(
      `   budget: ${b.used}/${b.limit} used, resets at ${b.resetsAt}, Retry-After ${budget.headers.get('retry-after')} s`,
    );

  const scanBody = {
    target: '127.0.0.1',
    mode: 'active',
    ports: [Number(new URL(options.baseUrl).port || 80), 1],
  };
  const escalated = await step(
    'The security auditor asks for an active port scan (escalated to a human)',
    { as: 'auditor-agent', path: '/v1/agents/security_auditor/tools/run_scan', body: scanBody },
    202,
    'the contract allows run_scan, but an active scan needs approval: OPA escalates and an approval request, bound to this exact input and this agent, is created.',
  );
  const approval = (escalated.body.approval ?? {}) as {
    id?: string;
    status_url?: string;
    approvers?: string[];
  };
  const approvalId = approval.id ?? 'missing';
  print(
    `   approval ${approvalId}, status at ${approval.status_url}, approvers need one of: ${approval.approvers?.join(', ')}`,
  );

  await step(
    'The auditor tries to approve its own request (refused)',
    { as: 'auditor-agent', path: `/v1/approvals/${approvalId}/approve`, body: { reason: 'trust me' } },
    403,
    'only a holder of approvals:security may approve, and never the requester itself.',
  );

  await step(
    'The security lead approves it',
    {
      as: 'security-lead',
      path: `/v1/approvals/${approvalId}/approve`,
      body: { reason: 'scan of our own gateway, change CHG-42' },
    },
    200,
    'an approver with approvals:security approved it; who, when and why are in the audit trail.',
  );

  await step(
    'The auditor retries the same call with the approval id (allowed, runs once)',
    {
      as: 'auditor-agent',
      path: '/v1/agents/security_auditor/tools/run_scan',
      body: scanBody,
      headers: { 'amas-approval-id': approvalId },
    },
    200,
    "OPA is asked again, the approval matches this agent and this input's hash, is unexpired and unused: it is consumed, the budget spent, the scan runs.",
  );

  await step(
    'The auditor replays the approval (refused)',
    {
      as: 'auditor-agent',
      path: '/v1/agents/security_auditor/tools/run_scan',
      body: scanBody,
      headers: { 'amas-approval-id': approvalId },
    },
    409,
    'an approval is single-use.',
  );

  const failed = results.filter((r) => !r.ok);
  print(
    failed.length === 0
      ? `\nAll ${results.length} steps answered as expected.`
      : `\n${failed.length} of ${results.length} steps did not answer as expected: ${failed.map((f) => f.title).join('; ')}`,
  );
  return results;
}
