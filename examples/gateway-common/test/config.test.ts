import { describe, expect, it } from 'vitest';
import { GATEWAY_ENV_VARS, readConfig } from '../src/config.js';

describe('readConfig', () => {
  it('runs on embedded defaults with an empty environment', () => {
    const c = readConfig({});
    expect(c).toMatchObject({
      host: '127.0.0.1',
      port: 3000,
      audience: 'amas-gateway',
      roleClaim: 'amas_role',
    });
    expect(c.issuer ?? c.opaUrl ?? c.redisUrl ?? c.contractsDir).toBeUndefined();
    expect(c.scanTargets).toEqual(['127.0.0.1', 'localhost']);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads every deployment switch', () => {
    const c = readConfig({
      PORT: '0',
      AMAS_OIDC_ISSUER: 'https://login.example.com/',
      AMAS_OPA_URL: 'http://opa:8181',
      AMAS_REDIS_URL: 'redis://redis:6379',
      AMAS_SCAN_TARGETS: ' scanme.internal , 10.0.0.5 ',
    });
    expect(c).toMatchObject({
      port: 0,
      issuer: 'https://login.example.com/',
      opaUrl: 'http://opa:8181',
      redisUrl: 'redis://redis:6379',
      scanTargets: ['scanme.internal', '10.0.0.5'],
    });
  });

  it('treats an empty variable as unset', () => {
    expect(readConfig({ AMAS_OPA_URL: '' }).opaUrl).toBeUndefined();
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['AMAS_OIDC_ISSUER', 'not a url'],
    ['AMAS_OPA_URL', 'ftp://opa:21'],
    ['AMAS_REDIS_URL', 'localhost:6379'],
  ])('stops the start on a bad %s, naming it', (name, value) => {
    expect(() => readConfig({ [name]: value })).toThrow(new RegExp(name));
  });

  it('lists the variables it reads', () => {
    expect(GATEWAY_ENV_VARS).toContain('AMAS_OPA_URL');
    expect(GATEWAY_ENV_VARS).toContain('AMAS_REDIS_URL');
  });
});
