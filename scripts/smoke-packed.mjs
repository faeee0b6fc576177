#!/usr/bin/env node
// Packaging smoke test: packs every package as it would be published, installs the tarballs
// into a scratch project with npm (as a user would), and loads every public entry point
// with both `import` and `require`. Tests that import `src` cannot see a broken `dist`; this can.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const scratch = mkdtempSync(join(tmpdir(), 'amas-smoke-'));
const run = (cmd, args, cwd) =>
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

const packages = readdirSync(join(root, 'packages')).map((dir) => {
  const path = join(root, 'packages', dir);
  return { path, manifest: JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')) };
});

let failures = 0;
try {
  const deps = {};
  for (const { path, manifest } of packages) {
    run('pnpm', ['pack', '--pack-destination', scratch], path);
    const tarball = readdirSync(scratch).find(
      (f) => f.startsWith(`${manifest.name.replace('@', '').replace('/', '-')}-`) && f.endsWith('.tgz'),
    );
    if (!tarball) throw new Error(`no tarball for ${manifest.name}`);
    deps[manifest.name] = `file:./${tarball}`;
  }
  writeFileSync(
    join(scratch, 'package.json'),
    JSON.stringify({ name: 'amas-smoke', private: true, dependencies: deps }, null, 2),
  );
  // Frameworks are not installed on purpose: adapters must import them as types only.
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], scratch);

  for (const { manifest } of packages) {
    const subpaths = Object.keys(manifest.exports).filter((k) => k !== './package.json');
    for (const sub of subpaths) {
      const spec = sub === '.' ? manifest.name : `${manifest.name}/${sub.slice(2)}`;
      const probe = (kind, code) => {
        try {
          const out = run(
            process.execPath,
            kind === 'import' ? ['--input-type=module', '-e', code] : ['-e', code],
            scratch,
          );
          const names = JSON.parse(out);
          if (names.length === 0) throw new Error('no exports');
          console.log(`ok   ${kind.padEnd(7)} ${spec} (${names.length} exports)`);
        } catch (err) {
          failures++;
          console.error(`FAIL ${kind.padEnd(7)} ${spec}: ${err.message.split('\n')[0]}`);
        }
      };
      probe(
        'import',
        `const m = await import(${JSON.stringify(spec)}); console.log(JSON.stringify(Object.keys(m).filter((k) => k !== 'default')))`,
      );
      probe('require', `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(spec)}))))`);
    }
    for (const bin of Object.keys(manifest.bin ?? {})) {
      try {
        run(join(scratch, 'node_modules', '.bin', bin), ['--help'], scratch);
        console.log(`ok   bin     ${bin} --help`);
      } catch (err) {
        failures++;
        console.error(`FAIL bin     ${bin} --help: ${err.message.split('\n')[0]}`);
      }
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
if (failures > 0) {
  console.error(`\n${failures} entry point(s) failed to load from the packed tarballs`);
  process.exit(1);
}
console.log('\nall entry points load from the packed tarballs (import and require)');
