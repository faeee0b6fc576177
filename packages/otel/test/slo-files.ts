import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll } from 'vitest';

/**
 * A scratch folder for the generated SLO files of one test file (removed after it), and how to write
 * files into it and run the real `promtool` there.
 */
export function sloScratch(prefix: string): {
  /** The scratch folder itself. */
  dir: string;
  write(dir: string, files: Map<string, string>): string;
  promtool(args: string[], cwd: string): { ok: boolean; output: string };
} {
  const scratch = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  return {
    dir: scratch,
    write(dir, files) {
      const out = join(scratch, dir);
      for (const [path, content] of files) {
        mkdirSync(dirname(join(out, path)), { recursive: true });
        writeFileSync(join(out, path), content);
      }
      return out;
    },
    promtool(args, cwd) {
      try {
        return { ok: true, output: execFileSync('promtool', args, { cwd, encoding: 'utf8', stdio: 'pipe' }) };
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string };
        return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
      }
    },
  };
}
