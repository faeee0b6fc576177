import { describe, expect, it } from 'vitest';
import { compileWhen } from '../src/conditions.js';
import type { Condition } from '../src/types.js';

// The semantics of docs/role-data.md: a missing field or a wrong type never matches, except exists: false.
const m = (c: Condition, input: unknown) => compileWhen([c])(input);

describe('approval conditions', () => {
  it('equals and not_equals compare JSON values deeply, and a missing field matches neither', () => {
    expect(m({ field: 'mode', op: 'equals', value: 'active' }, { mode: 'active' })).toBe(true);
    expect(m({ field: 'mode', op: 'equals', value: 'active' }, { mode: 'passive' })).toBe(false);
    expect(m({ field: 'o', op: 'equals', value: { a: [1, 2] } }, { o: { a: [1, 2] } })).toBe(true);
    expect(m({ field: 'o', op: 'equals', value: { a: [1, 2] } }, { o: { a: [2, 1] } })).toBe(false);
    expect(m({ field: 'mode', op: 'not_equals', value: 'x' }, { mode: 'y' })).toBe(true);
    expect(m({ field: 'mode', op: 'not_equals', value: 'x' }, {})).toBe(false);
  });

  it('in and not_in test membership; a missing field matches neither', () => {
    expect(m({ field: 'env', op: 'in', value: ['prod', 'staging'] }, { env: 'prod' })).toBe(true);
    expect(m({ field: 'env', op: 'in', value: ['prod'] }, { env: 'dev' })).toBe(false);
    expect(m({ field: 'env', op: 'not_in', value: ['dev'] }, { env: 'prod' })).toBe(true);
    expect(m({ field: 'env', op: 'not_in', value: ['dev'] }, {})).toBe(false);
  });

  it('prefix works on strings only', () => {
    expect(m({ field: 'path', op: 'prefix', value: '/etc/' }, { path: '/etc/passwd' })).toBe(true);
    expect(m({ field: 'path', op: 'prefix', value: '/etc/' }, { path: '/home' })).toBe(false);
    expect(m({ field: 'path', op: 'prefix', value: '1' }, { path: 12 })).toBe(false);
  });

  it('contains: a substring of a string, or an element of an array', () => {
    expect(m({ field: 'cmd', op: 'contains', value: 'rm' }, { cmd: 'sudo rm -rf' })).toBe(true);
    expect(m({ field: 'args', op: 'contains', value: '-rf' }, { args: ['-v', '-rf'] })).toBe(true);
    expect(m({ field: 'args', op: 'contains', value: '-r' }, { args: ['-rf'] })).toBe(false);
    expect(m({ field: 'cmd', op: 'contains', value: 1 }, { cmd: 'a1' })).toBe(false);
    expect(m({ field: 'n', op: 'contains', value: 1 }, { n: 1 })).toBe(false);
  });

  it('gt, gte, lt, lte compare numbers only', () => {
    expect(m({ field: 'n', op: 'gt', value: 10 }, { n: 11 })).toBe(true);
    expect(m({ field: 'n', op: 'gt', value: 10 }, { n: 10 })).toBe(false);
    expect(m({ field: 'n', op: 'gte', value: 10 }, { n: 10 })).toBe(true);
    expect(m({ field: 'n', op: 'lt', value: 10 }, { n: 9.5 })).toBe(true);
    expect(m({ field: 'n', op: 'lte', value: 10 }, { n: 10 })).toBe(true);
    expect(m({ field: 'n', op: 'gt', value: 10 }, { n: '11' })).toBe(false);
  });

  it('exists true and false', () => {
    expect(m({ field: 'a.b', op: 'exists', value: true }, { a: { b: null } })).toBe(true);
    expect(m({ field: 'a.b', op: 'exists', value: true }, { a: {} })).toBe(false);
    expect(m({ field: 'a.b', op: 'exists', value: false }, { a: {} })).toBe(true);
    expect(m({ field: 'a.b', op: 'exists', value: false }, 'not an object')).toBe(true);
  });

  it('follows dot paths through objects only, never through inherited members or arrays', () => {
    expect(m({ field: 'a.b.c', op: 'equals', value: 1 }, { a: { b: { c: 1 } } })).toBe(true);
    expect(m({ field: 'constructor', op: 'exists', value: true }, {})).toBe(false);
    expect(m({ field: 'toString', op: 'exists', value: true }, {})).toBe(false);
    expect(m({ field: 'list.0', op: 'equals', value: 'x' }, { list: ['x'] })).toBe(false);
    expect(m({ field: 'length', op: 'equals', value: 1 }, 'x')).toBe(false);
  });

  it('matches when any condition of the list matches', () => {
    const when = compileWhen([
      { field: 'mode', op: 'equals', value: 'active' },
      { field: 'ports', op: 'contains', value: 22 },
    ]);
    expect(when({ mode: 'passive', ports: [22] })).toBe(true);
    expect(when({ mode: 'passive', ports: [80] })).toBe(false);
  });
});
