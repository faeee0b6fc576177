import { lstat, open, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  listSandboxFiles,
  readSandboxFile,
  resolveInSandbox,
  sandboxRoot,
  ToolInputError,
} from './sandbox.js';

/** `read_file`: the text of one sandbox file, at most `max_bytes` (default 65536) bytes of it. */
export async function readFileTool(sandboxDir: string, input: { path: string; max_bytes?: number }) {
  const real = await resolveInSandbox(sandboxDir, input.path);
  if (!(await lstat(real)).isFile()) throw new ToolInputError(`not a file: ${input.path}`);
  const max = input.max_bytes ?? 65536;
  const handle = await open(real, 'r');
  try {
    const buffer = Buffer.alloc(max + 1);
    const { bytesRead } = await handle.read(buffer, 0, max + 1, 0);
    const truncated = bytesRead > max;
    const content = buffer.subarray(0, Math.min(bytesRead, max)).toString('utf8');
    return { path: relative(await sandboxRoot(sandboxDir), real), content, truncated };
  } finally {
    await handle.close();
  }
}

/** `list_files`: the entries of a sandbox folder, or every file under it with `recursive`. */
export async function listFilesTool(
  sandboxDir: string,
  input: { path: string; recursive?: boolean; max_entries?: number },
) {
  const limit = input.max_entries ?? 1000;
  if (input.recursive) {
    const files = await listSandboxFiles(sandboxDir, input.path, limit);
    return { path: input.path, entries: files.map((name) => ({ name, type: 'file' as const })) };
  }
  const dir = await resolveInSandbox(sandboxDir, input.path);
  if (!(await lstat(dir)).isDirectory()) throw new ToolInputError(`not a folder: ${input.path}`);
  const root = await sandboxRoot(sandboxDir);
  const entries = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() || e.isDirectory())
    .sort((a, b) => a.name.localeCompare(b.name))
    .slice(0, limit)
    .map((e) => ({ name: relative(root, join(dir, e.name)), type: e.isDirectory() ? 'folder' : 'file' }));
  return { path: input.path, entries };
}

/** `search_code`: lines that contain a literal string (case-insensitive), at most `max_results` (50). */
export async function searchCodeTool(
  sandboxDir: string,
  input: { query: string; path?: string; max_results?: number },
) {
  const needle = input.query.toLowerCase();
  const max = input.max_results ?? 50;
  const matches: { file: string; line: number; text: string }[] = [];
  for (const file of await listSandboxFiles(sandboxDir, input.path ?? '.')) {
    if (matches.length >= max) break;
    const { text } = await readSandboxFile(sandboxDir, file).catch(() => ({ text: '' }));
    text.split(/\r?\n/).forEach((line, i) => {
      if (matches.length < max && line.toLowerCase().includes(needle)) {
        matches.push({ file, line: i + 1, text: line.trim().slice(0, 200) });
      }
    });
  }
  return { query: input.query, matches };
}
