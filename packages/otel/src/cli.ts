#!/usr/bin/env node
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isTelemetryError } from './errors.js';
import { renderSloFiles } from './slo/files.js';
import { parseSloDefinitions } from './slo/schema.js';

const USAGE = `amas-slo: Prometheus rules and Grafana dashboards from SLO definitions

Usage:
  amas-slo generate --in <definitions.yaml> --out <dir> [--tests]
  amas-slo check --in <definitions.yaml>
  amas-slo --help

generate  validates the definitions, then writes into <dir>:
            slo-recording-rules.yaml   golden signals, SLI error ratios, error budget
            slo-alert-rules.yaml       multi-window multi-burn-rate alerts, budget policy
            dashboards/<uid>.json      one Grafana dashboard per service
            slo-rules.test.yaml        with --tests: fixtures for \`promtool test rules\`
check     validates the definitions only

Exit status: 0 done, 1 invalid definitions, 2 wrong usage.
`;

function main(argv: string[]): number {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    process.stderr.write(`amas-slo: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [command] = positionals;
  if ((command !== 'generate' && command !== 'check') || positionals.length !== 1 || !values.in) {
    process.stderr.write(`amas-slo: ${command ? `unknown usage of "${command}"` : 'no command'}\n\n${USAGE}`);
    return 2;
  }
  if (command === 'generate' && !values.out) {
    process.stderr.write(`amas-slo: generate needs --out <dir>\n\n${USAGE}`);
    return 2;
  }
  try {
    const source = values.in;
    const defs = parseSloDefinitions(readFileSync(source, 'utf8'), source);
    const count = defs.services.reduce((n, s) => n + s.slos.length, 0);
    if (command === 'check') {
      process.stdout.write(`${source}: ${defs.services.length} services, ${count} SLOs, valid\n`);
      return 0;
    }
    const out = resolve(values.out as string);
    for (const [path, content] of renderSloFiles(defs, { source, tests: values.tests })) {
      const file = join(out, path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
      process.stdout.write(`wrote ${file}\n`);
    }
    return 0;
  } catch (err) {
    if (isTelemetryError(err)) {
      process.stderr.write(`amas-slo: ${err.message}\n`);
      return 1;
    }
    // A file-system error (missing file, no permission, --out under a file, read-only disk): one line, no stack.
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
      process.stderr.write(`amas-slo: ${(err as Error).message}\n`);
      return 1;
    }
    throw err;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      in: { type: 'string' },
      out: { type: 'string' },
      tests: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

process.exitCode = main(process.argv.slice(2));
