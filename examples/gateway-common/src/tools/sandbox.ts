import { lstat, readdir, readFile, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/** Thrown for a path that is outside the sandbox, missing, or not the kind of entry the tool needs. */
export class ToolInputError extends Error {
  override readonly name = 'ToolInputError';
}

/** Largest file a tool reads, so that a tool call has a bounded cost. */
export const MAX_FILE_BYTES = 256 * 1024;

/** The sandbox folder with every symbolic link resolved. */
export function sandboxRoot(sandboxDir: string): Promise<string> {
  return realpath(sandboxDir);
}

/**
 * Resolves a caller-supplied relative path inside the sandbox folder. Absolute paths, `..` escapes,
 * NUL bytes and symbolic links that lead outside the sandbox are refused.
 */
export async function resolveInSandbox(sandboxDir: string, path: string): Promise<string> {
  if (path.includes('\0') || isAbsolute(path))
    throw new ToolInputError('path must be relative to the sandbox');
  const root = await sandboxRoot(sandboxDir);
  const candidate = resolve(root, path);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw new ToolInputError(`no such file or folder: ${path}`);
  }
  if (real !== root && !real.startsWith(root + sep)) throw new ToolInputError('path leaves the sandbox');
  return real;
}

/** Reads a text file inside the sandbox, at most {@link MAX_FILE_BYTES}. */
export async function readSandboxFile(
  sandboxDir: string,
  path: string,
): Promise<{ path: string; text: string }> {
  const real = await resolveInSandbox(sandboxDir, path);
  const info = await lstat(real);
  if (!info.isFile()) throw new ToolInputError(`not a file: ${path}`);
  if (info.size > MAX_FILE_BYTES)
    throw new ToolInputError(`file is larger than ${MAX_FILE_BYTES} bytes: ${path}`);
  return { path: relative(await sandboxRoot(sandboxDir), real), text: await readFile(real, 'utf8') };
}

/** Lists the files under a sandbox folder, depth-first, sorted, relative to the sandbox root. */
export async function listSandboxFiles(sandboxDir: string, path = '.', limit = 500): Promise<string[]> {
  const root = await sandboxRoot(sandboxDir);
  const start = await resolveInSandbox(sandboxDir, path);
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    for (const e of entries) {
      if (out.length >= limit) return;
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(relative(root, p));
    }
  };
  const info = await lstat(start);
  if (info.isFile()) return [relative(root, start)];
  await walk(start);
  return out;
}
