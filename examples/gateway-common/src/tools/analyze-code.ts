import { listSandboxFiles, readSandboxFile } from './sandbox.js';

/** The analyses `analyze_code` runs, as the `code_reviewer` contract names them. */
export type Analysis = 'complexity' | 'lint' | 'types' | 'dependencies';

/** One file's result: the metrics of the analysis that was asked for. */
export interface FileAnalysis {
  path: string;
  lines: number;
  metrics: Record<string, number>;
  findings: { line: number; rule: string; text: string }[];
}

const SOURCE = /\.(?:[cm]?[jt]sx?)$/;
const FUNCTION = /\bfunction\b|=>|^\s*(?:async\s+)?[A-Za-z_$][\w$]*\s*\([^()]*\)\s*\{/g;
const BRANCH = /\b(?:if|for|while|case|catch)\b|&&|\|\||\?\?/g;
const TODO = /\b(?:TODO|FIXME|XXX|HACK)\b.*$/;
const IMPORT =
  /\bfrom\s+['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]|\brequire\s*\(\s*['"]([^'"]+)['"]/g;
const JSDOC_TAG = /@(?:param|returns?|type|typedef)\b/g;
const TS_ANNOTATION = /\)\s*:\s*[A-Za-z{[]|\b(?:const|let|var)\s+\w+\s*:\s*[A-Za-z{[]/g;

function analyseText(path: string, text: string, analysis: Analysis): FileAnalysis {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const findings: FileAnalysis['findings'] = [];
  const metrics: Record<string, number> = {};
  const count = (re: RegExp) => lines.reduce((n, l) => n + (l.match(re)?.length ?? 0), 0);
  switch (analysis) {
    case 'complexity': {
      let depth = 0;
      let maxNesting = 0;
      for (const line of lines) {
        for (const ch of line) {
          if (ch === '{') maxNesting = Math.max(maxNesting, ++depth);
          else if (ch === '}') depth = Math.max(0, depth - 1);
        }
      }
      metrics.functions = count(FUNCTION);
      metrics.branches = count(BRANCH);
      metrics.max_nesting = maxNesting;
      break;
    }
    case 'lint':
      lines.forEach((line, i) => {
        const todo = TODO.exec(line);
        if (todo) findings.push({ line: i + 1, rule: 'todo-comment', text: todo[0].slice(0, 200) });
        if (line.length > 120)
          findings.push({ line: i + 1, rule: 'line-too-long', text: `${line.length} chars` });
        if (/\bconsole\.log\(|\bdebugger\b/.test(line))
          findings.push({ line: i + 1, rule: 'debug-statement', text: line.trim().slice(0, 200) });
      });
      metrics.findings = findings.length;
      break;
    case 'dependencies': {
      const deps = new Set<string>();
      for (const m of text.matchAll(IMPORT)) deps.add((m[1] ?? m[2] ?? m[3]) as string);
      for (const d of [...deps].sort())
        findings.push({ line: 0, rule: d.startsWith('.') ? 'local' : 'package', text: d });
      metrics.local = findings.filter((f) => f.rule === 'local').length;
      metrics.packages = findings.length - metrics.local;
      break;
    }
    case 'types':
      metrics.jsdoc_tags = count(JSDOC_TAG);
      metrics.ts_annotations = count(TS_ANNOTATION);
      break;
  }
  return { path, lines: lines.length, metrics, findings };
}

/**
 * `analyze_code`: a static analysis (`complexity`, `lint`, `types`, `dependencies`) of one source file
 * or of every source file under a sandbox folder (at most 50). Every file it reads counts against the
 * role's `file.read` budget, declared per call in the contract.
 */
export async function analyzeCode(sandboxDir: string, input: { path: string; analysis: Analysis }) {
  const files = (await listSandboxFiles(sandboxDir, input.path, 200))
    .filter((f) => SOURCE.test(f))
    .slice(0, 50);
  const results: FileAnalysis[] = [];
  for (const file of files) {
    const { path, text } = await readSandboxFile(sandboxDir, file);
    results.push(analyseText(path, text, input.analysis));
  }
  const totals: Record<string, number> = { files: results.length, lines: 0 };
  for (const r of results) {
    totals.lines = (totals.lines ?? 0) + r.lines;
    for (const [k, v] of Object.entries(r.metrics)) totals[k] = (totals[k] ?? 0) + v;
  }
  return { path: input.path, analysis: input.analysis, totals, files: results };
}
