import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { ContractIssue } from './errors.js';

/** One contract document before the format check, with where it came from. */
export interface ContractSource {
  readonly data: unknown;
  readonly file?: string;
  /** Finds the line and column of a path in the file, when the source is a file. */
  readonly locate?: (path: readonly PropertyKey[]) => { line: number; column: number } | undefined;
}

const EXTENSIONS = new Set(['.json', '.yaml', '.yml']);
const MAX_FILE_BYTES = 1_048_576;

/** Formats a path as `tools.read_file.effects["file.read"]` or `budgets[0].limit`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** Lists contract files: files as given, directories walked (sorted, hidden entries skipped). */
function listFiles(path: string, issues: ContractIssue[]): string[] {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    issues.push({ file: path, path: '', message: 'no such file or directory' });
    return [];
  }
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of readdirSync(path, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name.startsWith('.')) continue;
    const full = join(path, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full, issues));
    else if (EXTENSIONS.has(extname(entry.name).toLowerCase())) out.push(full);
  }
  return out;
}

/**
 * Parses one contract file (JSON or YAML; YAML 1.2 reads JSON too). Duplicate keys, merge keys (`<<`)
 * and more than 100 aliases are refused, so a file cannot say two things at once or blow up in memory.
 */
export function parseContractText(
  text: string,
  file?: string,
): { source?: ContractSource; issues: ContractIssue[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, merge: false, prettyErrors: false, lineCounter });
  const at = (offset: number) => lineCounter.linePos(offset);
  if (doc.errors.length > 0) {
    return {
      issues: doc.errors.map((e) => {
        const pos = at(e.pos[0]);
        return {
          file,
          path: '',
          line: pos.line,
          column: pos.col,
          message: e.message.split('\n')[0] ?? e.code,
        };
      }),
    };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { issues: [{ file, path: '', message: (err as Error).message }] };
  }
  const locate = (path: readonly PropertyKey[]) => {
    const p = [...path];
    while (true) {
      const node = p.length === 0 ? doc.contents : doc.getIn(p as unknown[], true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) {
        const pos = at(range[0]);
        return { line: pos.line, column: pos.col };
      }
      if (p.length === 0) return undefined;
      p.pop();
    }
  };
  return { source: { data, file, locate }, issues: [] };
}

/** Reads contract files and directories into sources, collecting every problem instead of stopping. */
export function readContractFiles(paths: readonly string[]): {
  sources: ContractSource[];
  issues: ContractIssue[];
} {
  const issues: ContractIssue[] = [];
  const sources: ContractSource[] = [];
  for (const path of paths) {
    for (const file of listFiles(path, issues)) {
      let text: string;
      try {
        if (statSync(file).size > MAX_FILE_BYTES) {
          issues.push({ file, path: '', message: `file is larger than ${MAX_FILE_BYTES} bytes` });
          continue;
        }
        text = readFileSync(file, 'utf8');
      } catch (err) {
        issues.push({
          file,
          path: '',
          message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        });
        continue;
      }
      const r = parseContractText(text, file);
      issues.push(...r.issues);
      if (r.source) sources.push(r.source);
    }
  }
  return { sources, issues };
}
