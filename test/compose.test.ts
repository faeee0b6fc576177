import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GATEWAY_ENV_VARS } from '@amas-examples/gateway-common';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// Docker cannot run here, so the compose file is checked for what can be checked without it: it parses,
// every mounted path exists, and ports, URLs and variables agree with the gateway and with each other.
const root = resolve(import.meta.dirname, '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, unknown> | string[];
}
const compose = parse(read('docker-compose.local.yml'), { uniqueKeys: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;
const gateway = services.gateway as Service;
const env = gateway.environment ?? {};
const containerPorts = (s: Service) => (s.ports ?? []).map((p) => Number(p.split(':').at(-1)));
const hostPorts = Object.values(services).flatMap((s) => (s.ports ?? []).map((p) => p.split(':')[0]));

describe('docker-compose.local.yml', () => {
  it('runs the gateway, OPA, Redis, a collector, Jaeger, Prometheus, Grafana and an OpenID Provider', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['gateway', 'grafana', 'jaeger', 'oidc', 'opa', 'otel-collector', 'prometheus', 'redis'].sort(),
    );
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it('mounts only paths that exist in the repository, and builds from files that exist', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0] as string;
        expect(host.startsWith('./'), `${name}: ${v}`).toBe(true);
        expect(existsSync(join(root, host)), `${name}: ${host}`).toBe(true);
      }
    }
    expect(existsSync(join(root, gateway.build?.context ?? '?', gateway.build?.dockerfile ?? '?'))).toBe(
      true,
    );
    for (const s of Object.values(services)) {
      for (const d of Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})) {
        expect(services[d], d).toBeDefined();
      }
    }
  });

  it('sets only variables the gateway reads, and the gateway listens where the port is published', () => {
    for (const key of Object.keys(env)) {
      expect(GATEWAY_ENV_VARS.includes(key) || key.startsWith('OTEL_'), key).toBe(true);
    }
    expect(containerPorts(gateway)).toEqual([Number(env.PORT)]);
    expect(env.HOST).toBe('0.0.0.0');
  });

  it('points the gateway at the services of the file, on the ports they listen on', () => {
    const at = (url: string | undefined) => {
      const u = new URL(url ?? 'missing://');
      return { host: u.hostname, port: Number(u.port) };
    };
    const opa = at(env.AMAS_OPA_URL);
    expect(services[opa.host]?.command?.join(' ')).toContain(`--addr=0.0.0.0:${opa.port}`);
    const redis = at(env.AMAS_REDIS_URL);
    expect(redis).toEqual({ host: 'redis', port: 6379 });
    const oidc = at(env.AMAS_OIDC_ISSUER);
    expect(services[oidc.host]?.environment?.SERVER_PORT).toBe(String(oidc.port));
    const otlp = at(env.OTEL_EXPORTER_OTLP_ENDPOINT);
    expect(read('deploy/otel-collector.yaml')).toContain(`endpoint: 0.0.0.0:${otlp.port}`);
    expect(services[otlp.host]).toBeDefined();
  });

  it('gives tokens the audience and role claim the gateway checks', () => {
    const mock = JSON.parse(read('deploy/mock-oauth2-server.json')) as {
      tokenCallbacks: { issuerId: string; requestMappings: { claims: Record<string, unknown> }[] }[];
    };
    const issuerId = new URL(env.AMAS_OIDC_ISSUER ?? '').pathname.slice(1);
    const callback = mock.tokenCallbacks.find((c) => c.issuerId === issuerId);
    expect(callback).toBeDefined();
    for (const { claims } of callback?.requestMappings ?? []) {
      expect(claims.aud).toContain(env.AMAS_OIDC_AUDIENCE);
    }
    expect(callback?.requestMappings.some((m) => m.claims.amas_role === 'security_auditor')).toBe(true);
  });

  it('wires the collector, Prometheus and Grafana to each other', () => {
    const collector = parse(read('deploy/otel-collector.yaml')) as {
      exporters: { prometheus: { endpoint: string } };
      service: { pipelines: Record<string, { exporters: string[] }> };
    };
    const promPort = collector.exporters.prometheus.endpoint.split(':').at(-1);
    const prometheus = parse(read('deploy/prometheus.yml')) as {
      rule_files: string[];
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    expect(prometheus.scrape_configs[0]?.static_configs[0]?.targets).toEqual([`otel-collector:${promPort}`]);
    for (const rule of prometheus.rule_files) {
      expect(existsSync(join(root, 'deploy/slo', rule.replace('/etc/prometheus/rules/', ''))), rule).toBe(
        true,
      );
    }
    const datasource = read('deploy/grafana/provisioning/datasources/prometheus.yaml');
    expect(datasource).toContain(
      `url: http://prometheus:${containerPorts(services.prometheus as Service)[0]}`,
    );
    expect(read('deploy/grafana/provisioning/dashboards/amas.yaml')).toContain(
      '/var/lib/grafana/dashboards/amas',
    );
  });
});

describe('deploy/slo', () => {
  it('is what amas-slo generates from config/slo_definitions.yaml', () => {
    const out = mkdtempSync(join(tmpdir(), 'amas-slo-'));
    try {
      const cli = join(root, 'packages/otel/dist/cli.js');
      execFileSync(process.execPath, [cli, 'generate', '--in', 'config/slo_definitions.yaml', '--out', out], {
        cwd: root,
      });
      const files = (dir: string): string[] =>
        readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? files(join(dir, e.name)).map((f) => `${e.name}/${f}`) : [e.name],
        );
      expect(files(join(root, 'deploy/slo')).sort()).toEqual(files(out).sort());
      for (const f of files(out)) expect(read(`deploy/slo/${f}`), f).toBe(readFileSync(join(out, f), 'utf8'));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('passes promtool check rules', () => {
    const output = execFileSync(
      'promtool',
      [
        'check',
        'rules',
        join(root, 'deploy/slo/slo-recording-rules.yaml'),
        join(root, 'deploy/slo/slo-alert-rules.yaml'),
      ],
      { encoding: 'utf8' },
    );
    expect(output).toMatch(/SUCCESS/);
  });
});
