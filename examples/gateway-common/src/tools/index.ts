import { analyzeCode } from './analyze-code.js';
import { listFilesTool, readFileTool, searchCodeTool } from './files.js';
import { runScan } from './run-scan.js';
import { scanSecrets } from './scan-secrets.js';
import { createTaskBoard } from './task-board.js';

export { ToolInputError } from './sandbox.js';

/** A tool handler: validated input in (the contract's schema already held), JSON-able output out. */
export type ToolHandler = (input: never) => Promise<unknown>;

/** Where the tools may act. */
export interface ToolboxOptions {
  /** The only folder the file tools read. */
  sandboxDir: string;
  /** The only hosts `run_scan` may scan. */
  scanTargets: readonly string[];
}

/**
 * The tools this gateway implements, by the names the predefined role contracts give them. A tool a
 * contract allows but this map lacks is answered 501 by the gateway.
 *
 * @example
 * ```ts
 * const tools = createToolbox({ sandboxDir: './sandbox', scanTargets: ['127.0.0.1'] });
 * const out = await tools.get('read_file')?.({ path: 'README.md' } as never);
 * ```
 */
export function createToolbox({ sandboxDir, scanTargets }: ToolboxOptions): ReadonlyMap<string, ToolHandler> {
  const board = createTaskBoard();
  const boardTools = Object.entries(board).map(
    ([name, fn]) =>
      [name, async (input: never) => (fn as (i: unknown) => unknown).call(board, input)] as [
        string,
        ToolHandler,
      ],
  );
  return new Map<string, ToolHandler>([
    ...boardTools,
    ['read_file', (input: Parameters<typeof readFileTool>[1]) => readFileTool(sandboxDir, input)],
    ['list_files', (input: Parameters<typeof listFilesTool>[1]) => listFilesTool(sandboxDir, input)],
    ['search_code', (input: Parameters<typeof searchCodeTool>[1]) => searchCodeTool(sandboxDir, input)],
    ['analyze_code', (input: Parameters<typeof analyzeCode>[1]) => analyzeCode(sandboxDir, input)],
    ['scan_secrets', (input: Parameters<typeof scanSecrets>[1]) => scanSecrets(sandboxDir, input)],
    ['run_scan', (input: Parameters<typeof runScan>[1]) => runScan(scanTargets, input)],
  ]);
}
