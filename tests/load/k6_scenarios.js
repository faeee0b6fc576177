// k6 load scenarios for the example gateway (https://k6.io). The same requests, stages and thresholds
// as `pnpm load` (tests/load/run.mjs, autocannon), read from scenarios.json and thresholds.json.
//
//   pnpm --filter @amas-examples/express-gateway start          # prints the embedded issuer's URL
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e TOKEN_URL=http://127.0.0.1:<issuer port>/token \
//     tests/load/k6_scenarios.js
//
// TOKEN_URL is an OAuth 2.0 token endpoint that grants client_credentials to the demo clients
// (examples/gateway-common/src/identities.ts); against your own issuer, pass CLIENT_SECRETS as JSON
// ({"reviewer-agent": "...", "orchestrator-agent": "..."}) or tokens as REVIEWER_TOKEN / ORCHESTRATOR_TOKEN.
import { check } from 'k6';
import http from 'k6/http';
import { Rate } from 'k6/metrics';

const thresholdsConfig = JSON.parse(open('./thresholds.json'));
const scenarioConfig = JSON.parse(open('./scenarios.json'));

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:3000';
const TOKEN_URL = __ENV.TOKEN_URL || '';
const SCALE = Number(__ENV.LOAD_SCALE || '1');
const DEMO_SECRETS = {
  'reviewer-agent': 'reviewer-agent-secret',
  'orchestrator-agent': 'orchestrator-agent-secret',
};
const SECRETS = __ENV.CLIENT_SECRETS ? JSON.parse(__ENV.CLIENT_SECRETS) : DEMO_SECRETS;

const unexpected = new Rate('unexpected_responses');

// Ramp up, hold, ramp down: the stages of scenarios.json as virtual users.
const stages = scenarioConfig.stages.map((s) => ({
  duration: `${Math.max(1, Math.round(s.seconds * SCALE))}s`,
  target: s.connections,
}));

function scenario(name) {
  return { executor: 'ramping-vus', startVUs: 0, stages, exec: name, tags: { scenario: name } };
}

export const options = {
  scenarios: {
    health: scenario('health'),
    tool_calls: scenario('tool_calls'),
    orchestrator: scenario('orchestrator'),
  },
  thresholds: {
    http_req_duration: [`p(95)<${thresholdsConfig.p95_ms}`, `p(99)<${thresholdsConfig.p99_ms}`],
    http_req_failed: [`rate<${thresholdsConfig.max_error_rate}`],
    unexpected_responses: [`rate<${thresholdsConfig.max_error_rate}`],
  },
};

function tokenFor(client) {
  const fromEnv = __ENV[`${client.split('-')[0].toUpperCase()}_TOKEN`];
  if (fromEnv) return fromEnv;
  const res = http.post(TOKEN_URL, {
    grant_type: 'client_credentials',
    client_id: client,
    client_secret: SECRETS[client],
  });
  if (res.status !== 200) throw new Error(`no token for ${client} from ${TOKEN_URL}: ${res.status}`);
  return res.json('access_token');
}

export function setup() {
  const tokens = {};
  for (const r of scenarioConfig.requests) if (r.as && !tokens[r.as]) tokens[r.as] = tokenFor(r.as);
  return tokens;
}

function send(r, tokens) {
  const headers = {};
  if (r.as) headers.authorization = `Bearer ${tokens[r.as]}`;
  if (r.body) headers['content-type'] = 'application/json';
  const res = http.request(r.method, `${BASE_URL}${r.path}`, r.body ? JSON.stringify(r.body) : null, {
    headers,
  });
  const ok = check(res, { 'status is 200': (x) => x.status === 200 });
  unexpected.add(!ok);
}

function run(name, tokens) {
  for (const r of scenarioConfig.requests) if (r.scenario === name) send(r, tokens);
}

export function health(tokens) {
  run('health', tokens);
}

export function tool_calls(tokens) {
  run('tool_calls', tokens);
}

export function orchestrator(tokens) {
  run('orchestrator', tokens);
}
