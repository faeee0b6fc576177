import { spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The review's process-level check: the package's source, compiled to plain ESM, runs a whole
// session of hostile answers and failing hooks in a child Node process started with
// --unhandled-rejections=strict, where any promise rejection nobody handles ends the process.

const pkg = resolve(import.meta.dirname, '..');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'amas-opa-strict-'));
  mkdirSync(join(dir, 'src'));
  for (const file of readdirSync(join(pkg, 'src')).filter((f) => f.endsWith('.ts'))) {
    const out = ts.transpileModule(readFileSync(join(pkg, 'src', file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(join(dir, 'src', file.replace(/\.ts$/, '.js')), out.outputText);
  }
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  symlinkSync(join(pkg, 'node_modules'), join(dir, 'node_modules'), 'dir');
  writeFileSync(join(dir, 'session.mjs'), SESSION);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const SESSION = `
import http from 'node:http';
import { createEnforcer } from './src/index.js';
import { startOpaTestServer } from './src/testing.js';

const roles = JSON.parse(process.argv[2]);
const opa = await startOpaTestServer({ data: roles });
const failing = async () => { throw new Error('sink down'); };
const e = createEnforcer({
  url: opa.url,
  timeoutMs: 100,
  retries: 0,
  cache: false,
  breaker: { failureThreshold: 1000 },
  decisionLog: { onDecision: failing },
  approvals: { onAudit: failing },
});
const read = { agentRole: 'code_reviewer', toolName: 'read_file', input: {} };
const seen = [];
for (const fault of [
  { kind: 'garbage' }, { kind: 'reset' }, { kind: 'huge' }, { kind: 'slow', delayMs: 300 },
  { kind: 'error500' }, { kind: 'wrong_shape' }, { kind: 'down' }, null,
]) {
  await opa.fault(fault);
  seen.push((await e.checkToolAccess(read)).outcome);
}
const principal = { sub: 'agent-42', scopes: ['agents:invoke'] };
const toolAccess = { agentRole: 'security_auditor', toolName: 'run_pentest', input: { target: 'x' } };
const a = await e.authorize({ toolAccess, principal });
await e.approvals.approve(a.approval.id, { sub: 'alice', scopes: ['approvals:security'] }, 'ok');
seen.push((await e.authorize({ toolAccess, principal, approvalId: a.approval.id })).outcome);
seen.push((await e.authorize({ toolAccess, principal, approvalId: a.approval.id })).outcome);
seen.push((await e.authorize({ toolAccess, principal: { sub: 'x' }, approvalId: 'not-a-real-id' })).outcome);
e.close();
await opa.close();
await new Promise((r) => setTimeout(r, 200));
console.log(JSON.stringify(seen));
`;

describe('review: a whole hostile session under --unhandled-rejections=strict', () => {
  it('ends normally, with every fault denied and failing async hooks swallowed', async () => {
    const roles = readFileSync(resolve(pkg, '..', '..', 'policies', 'roles.json'), 'utf8');
    const child = await new Promise<{ status: number | null; stdout: string; stderr: string }>((res) => {
      const p = spawn(process.execPath, ['--unhandled-rejections=strict', 'session.mjs', roles], {
        cwd: dir,
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => {
        stdout += d;
      });
      p.stderr.on('data', (d: Buffer) => {
        stderr += d;
      });
      p.on('close', (status) => res({ status, stdout, stderr }));
    });
    expect(child.stderr).not.toMatch(/Error|Unhandled|rejection/i);
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual([
      ...Array(7).fill('unavailable'),
      'allow',
      'allow',
      'deny',
      'deny',
    ]);
  });
});
