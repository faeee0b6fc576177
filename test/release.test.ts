import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The release flow: independent versions, public access, GitHub changelogs, release PRs by
// changesets/action, and npm provenance. A changeset may only name packages that exist and are public.
const root = resolve(import.meta.dirname, '..');
const config = JSON.parse(readFileSync(join(root, '.changeset/config.json'), 'utf8'));
const publicPackages = readdirSync(join(root, 'packages')).map((d) => `@amas/${d}`);

describe('changesets', () => {
  it('version packages independently, publish them publicly, with GitHub changelogs', () => {
    expect(config.fixed).toEqual([]);
    expect(config.linked).toEqual([]);
    expect(config.access).toBe('public');
    expect(config.changelog[0]).toBe('@changesets/changelog-github');
    expect(
      config.___experimentalUnsafeOptions_WILL_CHANGE_IN_PATCH.onlyUpdatePeerDependentsWhenOutOfRange,
    ).toBe(true);
  });

  it.each(readdirSync(join(root, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md'))(
    '%s names only public packages, with a bump and a summary',
    (file) => {
      const [, front = '', body = ''] = readFileSync(join(root, '.changeset', file), 'utf8').split(/^---$/m);
      const bumps = parse(front) as Record<string, string>;
      expect(Object.keys(bumps).length).toBeGreaterThan(0);
      for (const [pkg, bump] of Object.entries(bumps)) {
        expect(publicPackages).toContain(pkg);
        expect(['patch', 'minor', 'major']).toContain(bump);
      }
      expect(body.trim().length).toBeGreaterThan(20);
    },
  );
});

describe('release workflow', () => {
  const workflow = parse(readFileSync(join(root, '.github/workflows/release.yml'), 'utf8')) as {
    jobs: Record<
      string,
      { permissions: Record<string, string>; steps: { uses?: string; env?: Record<string, string> }[] }
    >;
  };
  const job = Object.values(workflow.jobs)[0];

  it('opens release PRs and publishes with changesets/action, with npm provenance', () => {
    const step = job?.steps.find((s) => s.uses?.startsWith('changesets/action@'));
    expect(step).toBeDefined();
    expect(step?.env?.NPM_CONFIG_PROVENANCE).toBe('true');
    expect(job?.permissions['id-token']).toBe('write');
  });
});
