import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeAll } from 'vitest';

/** A fixture of `test/fixtures` running in its own Node.js process. */
export interface FixtureProcess {
  proc: ChildProcess;
  stderr: () => string;
  /** The `{ port }` line the fixture prints once it listens. */
  firstLine: Promise<{ port: number }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * For tests that run real Node.js processes against the built package (`@amas/otel/register` resolves
 * to dist through the package's own exports), as users run it. Checks that dist exists before the
 * file's tests, kills what is still running after each test, and returns how to start a fixture (with
 * only `PATH` and the given environment).
 */
export function fixtureProcesses(): (args: string[], env: Record<string, string>) => FixtureProcess {
  const root = join(import.meta.dirname, '..');
  const fixtures = join(import.meta.dirname, 'fixtures');
  const children: ChildProcess[] = [];
  beforeAll(() => {
    if (!existsSync(join(root, 'dist', 'register.js'))) {
      throw new Error('dist is missing: run `pnpm --filter @amas/otel build` before these tests');
    }
  });
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  return (args, env) => {
    const proc = spawn(process.execPath, args, {
      cwd: fixtures,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(proc);
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const firstLine = new Promise<{ port: number }>((resolve, reject) => {
      const rl = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
      rl.once('line', (line) => resolve(JSON.parse(line) as { port: number }));
      proc.once('exit', () => reject(new Error(`exited before printing its port:\n${stderr}`)));
    });
    firstLine.catch(() => {});
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.once('exit', (code, signal) => resolve({ code, signal })),
    );
    return { proc, stderr: () => stderr, firstLine, exited };
  };
}
