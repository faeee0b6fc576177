import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { diffContracts } from './diff.js';
import type { ContractIssue } from './errors.js';
import { formatRoleData } from './export-opa.js';
import { contractJsonSchema } from './format.js';
import { loadContracts } from './load.js';
import { predefinedRolesDir } from './predefined.js';

const HELP = `amas-contracts: check AMAS role contracts and export them for OPA

Usage:
  amas-contracts validate [--format text|json|github] <files or dirs...>
      Check contract files (.json, .yaml, .yml). Exit 0 when all are valid, 1 when not.
      text:   one "file:path: message" line per problem
      json:   [{ "file", "path", "line", "column", "message" }]
      github: GitHub Actions annotations (::error file=...,line=...::path: message)
  amas-contracts export-opa [--out file] [files or dirs...]
      Write the role data document the Rego policy reads (sorted, pretty JSON).
      Without files: the predefined roles.
  amas-contracts diff [--format text|json] [--fail-on-widen] <old> <new>
      List permission changes from <old> to <new> (files or dirs): tools added or removed,
      approvals dropped, limits raised. With --fail-on-widen, exit 1 when a permission widens.
  amas-contracts schema
      Print the JSON Schema of the contract format (for editors).
  amas-contracts roles-dir
      Print the directory of the predefined role contracts.

Options:
  -h, --help      Show this help.
  -v, --version   Show the version.

Exit codes: 0 ok, 1 invalid contracts (or a widening with --fail-on-widen), 2 usage error.
`;

/** Where the command line writes: standard output and standard error by default. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}
type Out = CliOutput;

function version(): string {
  // dist/cli.js and src/cli-run.ts both sit one level below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function issueLine(i: ContractIssue): string {
  return `${i.file ?? '(input)'}:${i.path}: ${i.message}`;
}

/** A GitHub Actions annotation, escaped as the workflow command format asks (data and properties). */
function githubLine(i: ContractIssue): string {
  const data = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const prop = (s: string) => data(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
  const props = [`file=${prop(i.file ?? '')}`];
  if (i.line !== undefined) props.push(`line=${i.line}`);
  if (i.column !== undefined) props.push(`col=${i.column}`);
  return `::error ${props.join(',')}::${data(`${i.path}: ${i.message}`)}`;
}

function validate(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { format: { type: 'string', default: 'text' } },
  });
  if (!['text', 'json', 'github'].includes(values.format))
    throw new UsageError(`unknown --format "${values.format}"`);
  if (positionals.length === 0) throw new UsageError('validate needs at least one file or directory');
  const { contracts, issues } = loadContracts({ paths: positionals });
  if (values.format === 'json') io.out(`${JSON.stringify(issues, null, 2)}\n`);
  else if (values.format === 'github') for (const i of issues) io.out(`${githubLine(i)}\n`);
  else {
    for (const i of issues) io.out(`${issueLine(i)}\n`);
    if (issues.length === 0) io.err(`ok: ${contracts.length} contract(s) valid\n`);
    else io.err(`${issues.length} problem(s) found\n`);
  }
  return issues.length === 0 ? 0 : 1;
}

function exportOpa(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: 'string' } },
  });
  const paths = positionals.length > 0 ? positionals : [predefinedRolesDir()];
  const { contracts, issues } = loadContracts({ paths });
  if (issues.length > 0) {
    for (const i of issues) io.err(`${issueLine(i)}\n`);
    return 1;
  }
  const text = formatRoleData(contracts);
  if (values.out) writeFileSync(values.out, text);
  else io.out(text);
  return 0;
}

function diff(args: string[], io: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'text' },
      'fail-on-widen': { type: 'boolean', default: false },
    },
  });
  if (!['text', 'json'].includes(values.format)) throw new UsageError(`unknown --format "${values.format}"`);
  if (positionals.length !== 2) throw new UsageError('diff needs exactly two arguments: <old> <new>');
  const sides = positionals.map((p) => loadContracts({ paths: [p] }));
  const issues = sides.flatMap((s) => s.issues);
  if (issues.length > 0) {
    for (const i of issues) io.err(`${issueLine(i)}\n`);
    return 1;
  }
  const changes = diffContracts(sides[0]!.contracts, sides[1]!.contracts);
  if (values.format === 'json') io.out(`${JSON.stringify(changes, null, 2)}\n`);
  else if (changes.length === 0) io.out('no permission changes\n');
  else for (const c of changes) io.out(`${c.kind.padEnd(8)} ${c.role}: ${c.message}\n`);
  return values['fail-on-widen'] && changes.some((c) => c.kind === 'widened') ? 1 : 0;
}

class UsageError extends Error {}

/**
 * Runs the `amas-contracts` command line with the given arguments and returns the exit code.
 *
 * @example
 * ```ts
 * // what the amas-contracts bin does:
 * process.exitCode = run(process.argv.slice(2));
 * ```
 */
export function run(
  argv: readonly string[],
  io: Out = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) },
): number {
  const [command, ...rest] = argv;
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(HELP);
    return 0;
  }
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.out(HELP);
        return 0;
      case '-v':
      case '--version':
        io.out(`${version()}\n`);
        return 0;
      case 'validate':
        return validate(rest, io);
      case 'export-opa':
        return exportOpa(rest, io);
      case 'diff':
        return diff(rest, io);
      case 'schema':
        io.out(`${JSON.stringify(contractJsonSchema(), null, 2)}\n`);
        return 0;
      case 'roles-dir':
        io.out(`${predefinedRolesDir()}\n`);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    io.err(`amas-contracts: ${(err as Error).message}\n`);
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err('run "amas-contracts --help" for usage\n');
      return 2;
    }
    return 1;
  }
}
