import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOpaClient } from '../src/client.js';
import { createEnforcer, type EnforcerOptions } from '../src/enforcer.js';
import { isOpaError, type OpaErrorCode } from '../src/errors.js';
import { actionHash, canonicalJson } from '../src/hash.js';
import { type OpaTestServer, startOpaTestServer } from '../src/test-server.js';
import type { Decision } from '../src/types.js';
import { collectUnhandled, fixtureData, roleData } from './helpers.js';

// An independent, adversarial review: every case is one attack through the public API, against
// real servers on 127.0.0.1 (a hostile "OPA" speaking raw HTTP where needed).

const read = { agentRole: 'code_reviewer', toolName: 'read_file', input: { path: 'a.ts' } };
const code = (c: OpaErrorCode) => (err: unknown) => isOpaError(err) && err.code === c;

interface Hostile {
  url: string;
  port: number;
  /** Requests that reached it, with their headers. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** An "OPA" on 127.0.0.1 whose every answer is written by the test. */
function hostileOpa(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<Hostile> {
  const seen: Hostile['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => answer(req, res));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        seen,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/** A TCP server that writes raw bytes as its "HTTP" answer (for what node:http would refuse to send). */
function rawOpa(onRequest: (socket: net.Socket, count: number) => void): Promise<{
  url: string;
  connections: () => number;
  requests: () => number;
  close(): Promise<void>;
}> {
  let connections = 0;
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number(/content-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        buf = buf.slice(end + 4 + len);
        requests++;
        onRequest(socket, requests);
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        connections: () => connections,
        requests: () => requests,
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}

const strict = (url: string, extra: Partial<EnforcerOptions> = {}) =>
  createEnforcer({ url, timeoutMs: 200, retries: 0, breaker: false, cache: false, ...extra });

const json = (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(text);
};

describe('review: OPA answers that must never read as allow', () => {
  let body = '';
  let opa: Hostile;
  beforeAll(async () => {
    opa = await hostileOpa((_req, res) => json(res, 200, body));
  });
  afterAll(() => opa.close());

  // The tool-access decision must be exactly { allow: boolean, escalate: boolean, reasons: string[] }
  // (+ approval on escalate). Each of these is a lie, a typo or a half-written policy.
  const toolAccessLies: [string, string, string][] = [
    [
      'allow as the string "true"',
      '{"result":{"allow":"true","escalate":false,"reasons":[]}}',
      'unexpected_result',
    ],
    ['allow as the number 1', '{"result":{"allow":1,"escalate":false,"reasons":[]}}', 'unexpected_result'],
    [
      'escalate as the string "false"',
      '{"result":{"allow":true,"escalate":"false","reasons":[]}}',
      'unexpected_result',
    ],
    ['allow without escalate', '{"result":{"allow":true,"reasons":[]}}', 'unexpected_result'],
    ['allow without reasons', '{"result":{"allow":true,"escalate":false}}', 'unexpected_result'],
    [
      'reasons that are not strings',
      '{"result":{"allow":true,"escalate":false,"reasons":[1]}}',
      'unexpected_result',
    ],
    [
      'allow and escalate both true',
      '{"result":{"allow":true,"escalate":true,"reasons":[]}}',
      'unexpected_result',
    ],
    [
      'escalate without approval',
      '{"result":{"allow":false,"escalate":true,"reasons":["approval_required"]}}',
      'unexpected_result',
    ],
    [
      'escalate with approvers that are not strings',
      '{"result":{"allow":false,"escalate":true,"reasons":[],"approval":{"approvers":[1],"ttl_seconds":60}}}',
      'unexpected_result',
    ],
    [
      'escalate with ttl_seconds 0',
      '{"result":{"allow":false,"escalate":true,"reasons":[],"approval":{"approvers":["a"],"ttl_seconds":0}}}',
      'unexpected_result',
    ],
    [
      'escalate with a fractional ttl_seconds',
      '{"result":{"allow":false,"escalate":true,"reasons":[],"approval":{"approvers":["a"],"ttl_seconds":1.5}}}',
      'unexpected_result',
    ],
    [
      'escalate with ttl_seconds as a string',
      '{"result":{"allow":false,"escalate":true,"reasons":[],"approval":{"approvers":["a"],"ttl_seconds":"900"}}}',
      'unexpected_result',
    ],
    [
      'escalate with ttl_seconds that overflows to Infinity',
      '{"result":{"allow":false,"escalate":true,"reasons":[],"approval":{"approvers":["a"],"ttl_seconds":1e400}}}',
      'unexpected_result',
    ],
    ['a bare true (not a decision object)', '{"result":true}', 'unexpected_result'],
    [
      'an array holding an allow',
      '{"result":[{"allow":true,"escalate":false,"reasons":[]}]}',
      'unexpected_result',
    ],
    ['null', '{"result":null}', 'unexpected_result'],
    ['a number', '{"result":1}', 'unexpected_result'],
    [
      'allow hidden in __proto__',
      '{"result":{"__proto__":{"allow":true},"escalate":false,"reasons":[]}}',
      'unexpected_result',
    ],
    ['NaN (not JSON)', '{"result":NaN}', 'malformed'],
    ['Infinity (not JSON)', '{"result":{"allow":Infinity}}', 'malformed'],
    ['a JSON array body', '[{"result":{"allow":true,"escalate":false,"reasons":[]}}]', 'malformed'],
    ['a JSON string body', '"allow"', 'malformed'],
    ['the body null', 'null', 'malformed'],
    ['an empty body', '', 'malformed'],
    [
      'an allow followed by trailing bytes',
      '{"result":{"allow":true,"escalate":false,"reasons":[]}}xx',
      'malformed',
    ],
    [
      'a byte-order mark before an allow',
      '\uFEFF{"result":{"allow":true,"escalate":false,"reasons":[]}}',
      'malformed',
    ],
  ];

  it.each(toolAccessLies)('tool access: %s is unavailable, never allow', async (_name, text, kind) => {
    body = text;
    const e = strict(opa.url);
    const d = await e.checkToolAccess(read);
    expect(d.allowed).toBe(false);
    expect(d).toMatchObject({ outcome: 'unavailable', cause: { kind } });
    e.close();
  });

  const genericLies: [string, string][] = [
    ['the string "true"', '{"result":"true"}'],
    ['the number 1', '{"result":1}'],
    ['an array [true]', '{"result":[true]}'],
    ['allow: "yes"', '{"result":{"allow":"yes"}}'],
    ['escalate: 1', '{"result":{"allow":true,"escalate":1}}'],
    ['a number that overflows to Infinity', '{"result":1e400}'],
  ];

  it.each(genericLies)('any policy: %s is unavailable, never allow', async (_name, text) => {
    body = text;
    const e = strict(opa.url);
    const d = await e.decide('any/policy', { user: 'alice' });
    expect(d).toMatchObject({ outcome: 'unavailable', allowed: false, cause: { kind: 'unexpected_result' } });
    e.close();
  });

  it('extra fields do not change a denial', async () => {
    body =
      '{"result":{"allow":false,"escalate":false,"reasons":["tool_not_allowed"],"override":true,"allowed":true}}';
    const e = strict(opa.url);
    expect(await e.checkToolAccess(read)).toMatchObject({
      outcome: 'deny',
      allowed: false,
      reasons: ['tool_not_allowed'],
    });
    e.close();
  });

  it('a 200 that carries an error body (no result) is a denial, not an allow', async () => {
    body = '{"code":"internal_error","message":"boom"}';
    const e = strict(opa.url);
    expect(await e.checkToolAccess(read)).toMatchObject({ outcome: 'undefined', allowed: false });
    e.close();
  });

  it('deeply nested JSON under the size cap: refused without a crash, in time', async () => {
    const depth = 100_000;
    body = `{"result":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const e = strict(opa.url);
    const unhandled = await collectUnhandled(async () => {
      expect(await e.decide('any/policy', {})).toMatchObject({
        outcome: 'unavailable',
        cause: { kind: 'unexpected_result' },
      });
      const objects = 30_000;
      body = `{"result":{"allow":false,"escalate":false,"reasons":[],"x":${'{"a":'.repeat(objects)}1${'}'.repeat(objects)}}}`;
      expect(await e.checkToolAccess(read)).toMatchObject({ outcome: 'deny' });
    });
    expect(unhandled).toEqual([]);
    e.close();
  });
});

describe('review: hostile transport from OPA (or anything pretending to be it)', () => {
  const servers: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const track = <T extends { close(): Promise<void> }>(s: T) => {
    servers.push(s);
    return s;
  };

  const timed = async (run: () => Promise<Decision>) => {
    const t0 = performance.now();
    const d = await run();
    return { d, ms: performance.now() - t0 };
  };

  it('slowloris body (1 byte every 20 ms): timeout at the deadline, nothing hangs', async () => {
    const opa = track(
      await hostileOpa((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '10000' });
        const t = setInterval(() => {
          if (res.destroyed) return clearInterval(t);
          res.write(' ');
        }, 20);
        res.on('close', () => clearInterval(t));
      }),
    );
    const e = strict(opa.url);
    const { d, ms } = await timed(() => e.checkToolAccess(read));
    expect(d).toMatchObject({ outcome: 'unavailable', cause: { kind: 'timeout' } });
    expect(ms).toBeLessThan(2_000);
    e.close();
  });

  it('a chunked body that stalls half-way: timeout, no allow from the half', async () => {
    const opa = track(
      await hostileOpa((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"result":{"allow":true,"escalate":false,"reasons":[]');
      }),
    );
    const e = strict(opa.url);
    const { d, ms } = await timed(() => e.checkToolAccess(read));
    expect(d).toMatchObject({ outcome: 'unavailable', cause: { kind: 'timeout' } });
    expect(ms).toBeLessThan(2_000);
    e.close();
  });

  it('a status line and then nothing (headers never end): timeout', async () => {
    const opa = track(await rawOpa((socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-type: appl')));
    const e = strict(opa.url);
    const { d, ms } = await timed(() => e.checkToolAccess(read));
    expect(d).toMatchObject({ outcome: 'unavailable', cause: { kind: 'timeout' } });
    expect(ms).toBeLessThan(2_000);
    e.close();
  });

  it('a gzip bomb (20 MiB of allow padding in ~20 KiB): refused within the cap', async () => {
    const bomb = gzipSync(Buffer.from(`{"result":true,"pad":"${' '.repeat(20 * 1024 * 1024)}"}`));
    expect(bomb.length).toBeLessThan(256 * 1024);
    const opa = track(
      await hostileOpa((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(bomb);
      }),
    );
    const e = strict(opa.url, { timeoutMs: 2_000 });
    const d = await e.decide('any/policy', {});
    expect(d).toMatchObject({ outcome: 'unavailable', allowed: false, cause: { kind: 'malformed' } });
    e.close();
  });

  it('a proxy error page (200, text/html) is malformed, never a decision', async () => {
    const opa = track(
      await hostileOpa((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>{"result":true}</body></html>');
      }),
    );
    const e = strict(opa.url);
    expect(await e.decide('any/policy', {})).toMatchObject({
      outcome: 'unavailable',
      cause: { kind: 'malformed' },
    });
    e.close();
  });

  it('a deflate body the client never asked for is not decoded into an allow', async () => {
    const opa = track(
      await hostileOpa((_req, res) => {
        res
          .writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'deflate' })
          .end(deflateSync('{"result":true}'));
      }),
    );
    const e = strict(opa.url);
    expect(await e.decide('any/policy', {})).toMatchObject({
      outcome: 'unavailable',
      cause: { kind: 'malformed' },
    });
    e.close();
  });

  it.each([301, 302, 303, 307, 308])(
    'a %i redirect to another host is not followed, and the bearer token never reaches it',
    async (status) => {
      const elsewhere = track(await hostileOpa((_req, res) => json(res, 200, '{"result":true}')));
      const opa = track(
        await hostileOpa((req, res) => {
          res.writeHead(status, { location: `${elsewhere.url}${req.url}` }).end();
        }),
      );
      const e = strict(opa.url, { token: 'opa-secret-token' });
      const d = await e.decide('any/policy', {});
      expect(d).toMatchObject({ outcome: 'unavailable', cause: { kind: 'http_error', status } });
      expect(elsewhere.seen).toHaveLength(0);
      expect(opa.seen[0]?.headers.authorization).toBe('Bearer opa-secret-token');
      e.close();
    },
  );

  it('response splitting: a second (allow) response smuggled after a deny never answers a later query', async () => {
    const deny = '{"result":false}';
    const allow = '{"result":true}';
    const opa = track(
      await rawOpa((socket) =>
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${deny.length}\r\n\r\n${deny}` +
            `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${allow.length}\r\n\r\n${allow}`,
        ),
      ),
    );
    const e = strict(opa.url);
    for (let i = 0; i < 4; i++) {
      expect((await e.decide('any/policy', { i })).outcome).toBe('deny');
    }
    // Each query got its own connection's first answer: the smuggled one was dropped with its socket.
    expect(opa.requests()).toBe(4);
    e.close();
  });

  it('a body shorter than its Content-Length (then close): malformed, not the truncated prefix', async () => {
    const opa = track(
      await rawOpa((socket) => {
        socket.end(
          'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{"result":true}',
        );
      }),
    );
    const e = strict(opa.url);
    expect(await e.decide('any/policy', {})).toMatchObject({
      outcome: 'unavailable',
      cause: { kind: 'malformed' },
    });
    e.close();
  });

  it('a declared Content-Length over the cap is refused at once, without waiting for the body', async () => {
    const opa = track(
      await rawOpa((socket) =>
        socket.write(
          'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n',
        ),
      ),
    );
    const e = strict(opa.url, { timeoutMs: 5_000 });
    const { d, ms } = await timed(() => e.decide('any/policy', {}));
    expect(d).toMatchObject({ outcome: 'unavailable', cause: { kind: 'too_large' } });
    expect(ms).toBeLessThan(2_500);
    e.close();
  });

  it('a chunked body that grows past the cap is cut off as too_large', async () => {
    const opa = track(
      await hostileOpa((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"result":true,"pad":"');
        const chunk = 'x'.repeat(64 * 1024);
        const t = setInterval(() => {
          if (res.destroyed) return clearInterval(t);
          res.write(chunk);
        }, 1);
        res.on('close', () => clearInterval(t));
      }),
    );
    const e = strict(opa.url, { timeoutMs: 5_000 });
    expect(await e.decide('any/policy', {})).toMatchObject({
      outcome: 'unavailable',
      cause: { kind: 'too_large' },
    });
    e.close();
  });

  it.each([201, 204, 206])('a %i answer (not 200) is never read as a decision', async (status) => {
    const opa = track(
      await hostileOpa((_req, res) =>
        status === 204 ? res.writeHead(204).end() : json(res, status, '{"result":true}'),
      ),
    );
    const e = strict(opa.url);
    expect(await e.decide('any/policy', {})).toMatchObject({
      outcome: 'unavailable',
      cause: { kind: 'http_error', status },
    });
    e.close();
  });

  it('bytes that are not HTTP at all: unavailable, nothing escapes', async () => {
    const opa = track(await rawOpa((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n{"result":true}\r\n')));
    const e = strict(opa.url);
    const unhandled = await collectUnhandled(async () => {
      expect(await e.decide('any/policy', {})).toMatchObject({ outcome: 'unavailable', allowed: false });
    });
    expect(unhandled).toEqual([]);
    e.close();
  });
});

describe('review: header injection towards OPA', () => {
  let opa: Hostile;
  beforeAll(async () => {
    opa = await hostileOpa((_req, res) => json(res, 200, '{"result":true}'));
  });
  afterAll(() => opa.close());

  it('a token function returning CR/LF cannot inject a header; the client resolves (never throws)', async () => {
    opa.seen.length = 0;
    const client = createOpaClient({ url: opa.url, token: () => 'abc\r\nx-injected: 1', retries: 0 });
    const r = await client.evaluate('any/policy', {});
    expect(r).toMatchObject({ ok: false });
    expect(opa.seen.some((s) => s.headers['x-injected'] !== undefined)).toBe(false);
    const e = createEnforcer({ client, breaker: false, cache: false });
    expect(await e.decide('any/policy', {})).toMatchObject({ outcome: 'unavailable', allowed: false });
    client.close();
  });

  it('a static token or header value with CR/LF (a token file read without trim) is refused at the factory', () => {
    for (const options of [
      { url: opa.url, token: 'opa-token\n' },
      { url: opa.url, headers: { 'x-tenant': 't1\r\nx-injected: 1' } },
    ]) {
      let thrown: unknown;
      try {
        createEnforcer(options);
      } catch (err) {
        thrown = err;
      }
      expect(isOpaError(thrown) && thrown.code).toBe('config_invalid');
      expect((thrown as Error).message).toMatch(/option "(token|headers\.x-tenant)"/);
      expect((thrown as Error).message).not.toContain('opa-token');
    }
  });
});

describe('review: canonical JSON, the hash and what OPA is asked', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer({ data: fixtureData });
  });
  afterAll(() => opa.close());

  it('attack: 1e400 in a JSON body is Infinity to the tool but null to OPA; it is refused, not asked', async () => {
    // t_gt escalates when n > 100. Infinity > 100 for the tool; null > 100 is false for the policy.
    const body = JSON.parse('{"n":1e400}') as Record<string, unknown>;
    expect(body.n).toBe(Number.POSITIVE_INFINITY);
    const e = createEnforcer({ url: opa.url, cache: false });
    opa.resetStats();
    await expect(e.checkToolAccess({ agentRole: 'lab', toolName: 't_gt', input: body })).rejects.toSatisfy(
      code('input_invalid'),
    );
    const escalated = await e
      .authorize({
        toolAccess: { agentRole: 'lab', toolName: 't_gt', input: body },
        principal: { sub: 'agent-42' },
      })
      .catch((err: unknown) => err);
    expect(isOpaError(escalated) && escalated.code).toBe('input_invalid');
    expect(opa.stats().data).toBe(0);
    e.close();
  });

  it('attack: NaN and -Infinity are refused too (they would also reach OPA as null)', () => {
    for (const v of [Number.NaN, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY]) {
      expect(() => canonicalJson({ n: v })).toThrow(/serialized/);
      expect(() => canonicalJson([1, { deep: [v] }])).toThrow(/serialized/);
    }
  });

  it('an input and an approval for null stay distinct from an input that held Infinity', () => {
    expect(canonicalJson({ n: null })).toBe('{"n":null}');
    expect(() => canonicalJson({ n: Number.POSITIVE_INFINITY })).toThrow();
  });

  it('-0, 1.0 and 1e0 are the same JSON number for the tool and for OPA, so they hash the same', () => {
    const parsed = JSON.parse('[-0, 1.0, 1e0, 100, 1e2]') as number[];
    expect(canonicalJson(parsed)).toBe('[0,1,1,100,100]');
  });

  it('canonical JSON never holds a raw newline, so path + "\\n" + JSON splits one way only', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(value)).not.toContain('\n');
      }),
    );
    // Moving text across the separator cannot give the same action hash.
    expect(actionHash('a/b', canonicalJson('x\n1'))).not.toBe(actionHash('a/b\n"x', canonicalJson(1)));
  });

  it('a __proto__ key in a JSON body is a plain key: it reaches OPA and the hash, it sets no prototype', () => {
    const body = JSON.parse('{"__proto__":{"mode":"active"},"target":"x"}') as Record<string, unknown>;
    const text = canonicalJson(body);
    expect(text).toBe('{"__proto__":{"mode":"active"},"target":"x"}');
    expect(canonicalJson({ target: 'x' })).not.toBe(text);
    expect(({} as Record<string, unknown>).mode).toBeUndefined();
  });
});

describe('review: decision cache poisoning', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer({
      data: roleData,
      rules: {
        // Allows only alice: the decision depends on the subject alone.
        'review/by_subject': (input) => {
          const sub = (input as { subject?: { sub?: string } }).subject?.sub;
          return sub === 'alice'
            ? { allow: true, escalate: false, reasons: [] }
            : { allow: false, escalate: false, reasons: ['not_alice'] };
        },
        'review/bare_true': () => true,
      },
    });
  });
  afterEach(() => opa.fault(null));
  afterAll(() => opa.close());

  it('a deny for one principal is never served to another whose input differs only by subject', async () => {
    const e = createEnforcer({ url: opa.url, toolAccessPath: 'review/by_subject', cache: { ttlMs: 60_000 } });
    opa.resetStats();
    const as = (sub: string) =>
      e.authorize({ toolAccess: { agentRole: 'admin', toolName: 'read_file' }, principal: { sub } });
    expect(await as('bob')).toMatchObject({ outcome: 'deny', reasons: ['not_alice'] });
    expect(await as('alice')).toMatchObject({ outcome: 'allow' });
    expect(await as('bob')).toMatchObject({ outcome: 'deny', decision: { cached: true } });
    expect(await as('alice')).toMatchObject({ outcome: 'allow', decision: { cached: true } });
    expect(opa.stats().data).toBe(2);
    e.close();
  });

  it('a bare `true` cached by decide() on the tool-access path is never reused by checkToolAccess', async () => {
    const e = createEnforcer({ url: opa.url, toolAccessPath: 'review/bare_true', cache: { ttlMs: 60_000 } });
    const input = { agent_role: 'code_reviewer', tool_name: 'read_file', input: {} };
    expect(await e.decide('review/bare_true', input)).toMatchObject({ outcome: 'allow' });
    const d = await e.checkToolAccess({ agentRole: 'code_reviewer', toolName: 'read_file', input: {} });
    expect(d).toMatchObject({ outcome: 'unavailable', cause: { kind: 'unexpected_result' } });
    e.close();
  });

  it('a fallback allow is never cached: the next call without fallback is a denial', async () => {
    await opa.fault({ kind: 'error500' });
    const e = createEnforcer({ url: opa.url, breaker: false, cache: { ttlMs: 60_000 } });
    const [withFallback, without] = await Promise.all([
      e.checkToolAccess(read, { fallback: 'allow' }),
      e.checkToolAccess(read),
    ]);
    expect(withFallback).toMatchObject({ outcome: 'allow', fallback: { kind: 'http_error' } });
    expect(without).toMatchObject({ outcome: 'unavailable', allowed: false });
    expect(await e.checkToolAccess(read)).toMatchObject({ outcome: 'unavailable', allowed: false });
    e.close();
  });

  it('an outage seen by 50 coalesced callers is not cached: the first call after recovery asks OPA', async () => {
    await opa.fault({ kind: 'error500' });
    const e = createEnforcer({ url: opa.url, breaker: false, retries: 0, cache: { ttlMs: 60_000 } });
    const all = await Promise.all(Array.from({ length: 50 }, () => e.checkToolAccess(read)));
    expect(all.every((d) => d.outcome === 'unavailable')).toBe(true);
    await opa.fault(null);
    opa.resetStats();
    expect(await e.checkToolAccess(read)).toMatchObject({ outcome: 'allow', cached: false });
    expect(opa.stats().data).toBe(1);
    e.close();
  });

  it('a cached escalation gives the caller its pending request, and a new one once that was used', async () => {
    const e = createEnforcer({ url: opa.url, cache: { ttlMs: 60_000 } });
    opa.resetStats();
    const principal = { sub: 'agent-42' };
    const toolAccess = { agentRole: 'security_auditor', toolName: 'run_pentest', input: {} };
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const a = await e.authorize({ toolAccess, principal });
      expect(a.outcome).toBe('escalate');
      if (a.outcome === 'escalate') ids.add(a.approval.id);
    }
    expect(ids.size).toBe(1);
    expect(opa.stats().data).toBe(1);
    const [id] = [...ids] as [string];
    await e.approvals.approve(id, { sub: 'alice', scopes: ['approvals:security'] });
    expect(await e.authorize({ toolAccess, principal, approvalId: id })).toMatchObject({ outcome: 'allow' });
    const next = await e.authorize({ toolAccess, principal });
    expect(next.outcome).toBe('escalate');
    if (next.outcome === 'escalate') {
      expect(next.approval.id).not.toBe(id);
      expect(next.approval.status).toBe('pending');
    }
    expect(opa.stats().data).toBe(1);
    e.close();
  });
});

describe('review: circuit breaker under flapping', () => {
  it('failures that are not consecutive never open it; every call still reaches OPA', async () => {
    let n = 0;
    const opa = await hostileOpa((_req, res) => {
      n++;
      if (n % 3 === 0) json(res, 200, '{"result":true}');
      else json(res, 500, '{"code":"internal_error","message":"flap"}');
    });
    const e = createEnforcer({ url: opa.url, retries: 0, cache: false, breaker: { failureThreshold: 3 } });
    const outcomes: string[] = [];
    for (let i = 0; i < 30; i++) outcomes.push((await e.decide('any/policy', { i })).outcome);
    expect(e.breakerState()).toBe('closed');
    expect(opa.seen).toHaveLength(30);
    expect(outcomes.filter((o) => o === 'allow')).toHaveLength(10);
    e.close();
    await opa.close();
  });

  it('after a successful probe the count starts again: it takes `failureThreshold` new failures to reopen', async () => {
    let failing = true;
    const opa = await hostileOpa((_req, res) =>
      failing ? json(res, 503, '{"code":"unavailable","message":"x"}') : json(res, 200, '{"result":true}'),
    );
    let t = 0;
    const e = createEnforcer({
      url: opa.url,
      retries: 0,
      cache: false,
      breaker: { failureThreshold: 2, openMs: 1_000 },
      now: () => t,
    });
    await e.decide('p/q', {});
    await e.decide('p/q', {});
    expect(e.breakerState()).toBe('open');
    t += 1_000;
    failing = false;
    expect((await e.decide('p/q', {})).outcome).toBe('allow');
    expect(e.breakerState()).toBe('closed');
    failing = true;
    await e.decide('p/q', {});
    expect(e.breakerState()).toBe('closed');
    await e.decide('p/q', {});
    expect(e.breakerState()).toBe('open');
    const seen = opa.seen.length;
    expect(await e.decide('p/q', {})).toMatchObject({ cause: { kind: 'breaker_open' } });
    expect(opa.seen).toHaveLength(seen);
    e.close();
    await opa.close();
  });
});

describe('review: hooks that fail', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer({ data: roleData });
  });
  afterAll(() => opa.close());

  it('an async decision-log sink that rejects leaks no unhandled rejection (it would end the process)', async () => {
    const e = createEnforcer({
      url: opa.url,
      decisionLog: {
        onDecision: (async () => {
          throw new Error('log sink down');
        }) as never,
      },
    });
    const unhandled = await collectUnhandled(async () => {
      expect((await e.checkToolAccess(read)).outcome).toBe('allow');
    });
    expect(unhandled).toEqual([]);
    e.close();
  });

  it('an async audit sink that rejects leaks no unhandled rejection, and the flow goes on', async () => {
    const e = createEnforcer({
      url: opa.url,
      approvals: {
        onAudit: (async () => {
          throw new Error('audit sink down');
        }) as never,
      },
    });
    const unhandled = await collectUnhandled(async () => {
      const a = await e.authorize({
        toolAccess: { agentRole: 'security_auditor', toolName: 'run_pentest' },
        principal: { sub: 'agent-42' },
      });
      expect(a.outcome).toBe('escalate');
      if (a.outcome !== 'escalate') return;
      await e.approvals.approve(a.approval.id, { sub: 'alice', scopes: ['approvals:security'] });
      const used = await e.authorize({
        toolAccess: { agentRole: 'security_auditor', toolName: 'run_pentest' },
        principal: { sub: 'agent-42' },
        approvalId: a.approval.id,
      });
      expect(used.outcome).toBe('allow');
      // A refused use is audited too.
      await e.authorize({
        toolAccess: { agentRole: 'security_auditor', toolName: 'run_pentest' },
        principal: { sub: 'agent-42' },
        approvalId: a.approval.id,
      });
    });
    expect(unhandled).toEqual([]);
    e.close();
  });

  it('an async sink that never settles does not hold the decision', async () => {
    const e = createEnforcer({
      url: opa.url,
      decisionLog: { onDecision: (() => new Promise(() => undefined)) as never },
      approvals: { onAudit: (() => new Promise(() => undefined)) as never },
    });
    const t0 = performance.now();
    expect((await e.checkToolAccess(read)).outcome).toBe('allow');
    const a = await e.authorize({
      toolAccess: { agentRole: 'security_auditor', toolName: 'run_pentest' },
      principal: { sub: 'agent-42' },
    });
    expect(a.outcome).toBe('escalate');
    expect(performance.now() - t0).toBeLessThan(2_000);
    e.close();
  });

  it('a sink that tries to rewrite the event cannot change the decision it was told about', async () => {
    const e = createEnforcer({
      url: opa.url,
      cache: { ttlMs: 60_000 },
      decisionLog: {
        onDecision: (ev) => {
          (ev as { outcome: string }).outcome = 'allow';
        },
      },
    });
    const deny = { agentRole: 'code_reviewer', toolName: 'delete_file' };
    expect(await e.checkToolAccess(deny)).toMatchObject({ outcome: 'deny', allowed: false });
    expect(await e.checkToolAccess(deny)).toMatchObject({ outcome: 'deny', allowed: false, cached: true });
    e.close();
  });
});

describe('review: the OPA test server (@amas/opa/testing) cannot be turned against its own process', () => {
  let opa: OpaTestServer;
  beforeAll(async () => {
    opa = await startOpaTestServer({ data: roleData });
  });
  afterAll(() => opa.close());

  const send = (method: string, path: string, body?: string) =>
    fetch(`${opa.url}${path}`, {
      method,
      ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}),
    });

  it('attack: PUT /v1/data/__proto__/x does not pollute Object.prototype; it stores a document, as OPA does', async () => {
    const proto = Object.prototype as Record<string, unknown>;
    try {
      expect((await send('PUT', '/v1/data/__proto__/amas_polluted', 'true')).status).toBe(204);
      expect(proto.amas_polluted).toBeUndefined();
      const r = (await (await send('POST', '/v1/data/__proto__/amas_polluted', '{"input":{}}')).json()) as {
        result?: unknown;
      };
      expect(r.result).toBe(true);
    } finally {
      delete proto.amas_polluted;
    }
  });

  it('attack: PUT /v1/data/roles_doc/__proto__ stores a key, it does not swap a prototype', async () => {
    expect((await send('PUT', '/v1/data/roles_doc', '{"a":1}')).status).toBe(204);
    expect((await send('PUT', '/v1/data/roles_doc/__proto__', '{"allow":true}')).status).toBe(204);
    const r = (await (await send('POST', '/v1/data/roles_doc', '{"input":{}}')).json()) as {
      result?: Record<string, unknown>;
    };
    expect(r.result).toEqual(JSON.parse('{"a":1,"__proto__":{"allow":true}}'));
    const allow = (await (await send('POST', '/v1/data/roles_doc/allow', '{"input":{}}')).json()) as {
      result?: unknown;
    };
    expect(allow.result).toBeUndefined();
  });

  it('attack: DELETE /v1/data/__proto__/hasOwnProperty cannot delete a built-in', async () => {
    const saved = Object.getOwnPropertyDescriptor(Object.prototype, 'hasOwnProperty');
    try {
      expect((await send('DELETE', '/v1/data/__proto__/hasOwnProperty')).status).toBe(404);
      expect(typeof Object.prototype.hasOwnProperty).toBe('function');
    } finally {
      if (saved && !Object.hasOwn(Object.prototype, 'hasOwnProperty'))
        Object.defineProperty(Object.prototype, 'hasOwnProperty', saved);
    }
  });
});
