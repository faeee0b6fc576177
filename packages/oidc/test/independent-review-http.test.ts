import { createServer } from 'node:http';
import { connect } from 'node:net';
import Router from '@koa/router';
import express5 from 'express';
import express4 from 'express4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOidcError } from '../src/errors.js';
import { authenticate as expressAuth, requireScopes as expressScopes } from '../src/express.js';
import { authenticate as koaAuth, requireScopes as koaScopes } from '../src/koa.js';
import { createTestIssuer, type TestIssuer } from '../src/testing.js';
import type { Verifier } from '../src/types.js';
import { createVerifier } from '../src/verifier.js';
import { AUDIENCE, b64, type Listening, listen } from './helpers.js';

// The adapters on real servers on 127.0.0.1, spoken to byte by byte: what reaches Express and Koa is
// what Node's HTTP parser made of the wire, which is not always what a `fetch` client can send.

interface RawResponse {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

/** Sends `head` (request line and header lines, without the final blank line) on a fresh socket. */
function raw(url: string, lines: string[]): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...headerLines] = text.slice(0, split).split('\r\n');
      const headers = headerLines.map((l): [string, string] => {
        const colon = l.indexOf(':');
        return [l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()];
      });
      let body = text.slice(split + 4);
      if (headers.some(([k, v]) => k === 'transfer-encoding' && v === 'chunked')) {
        let out = '';
        let rest = body;
        for (;;) {
          const eol = rest.indexOf('\r\n');
          const size = Number.parseInt(rest.slice(0, eol), 16);
          if (!size) break;
          out += rest.slice(eol + 2, eol + 2 + size);
          rest = rest.slice(eol + 4 + size);
        }
        body = out;
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    socket.write(`${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`);
  });
}

const get = (url: string, path: string, headerLines: string[]) =>
  raw(url, [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headerLines]);

const hostileRealm = 'tools\r\nSet-Cookie: realm=1 \u2028 \u00e9';
const hostileScope = 'tools:admin"\r\nSet-Cookie: scope=1 \u00e9\u2603';
let idp: TestIssuer;
let verifier: Verifier;
let good: string;
let other: string;

beforeAll(async () => {
  idp = await createTestIssuer({ audience: AUDIENCE });
  verifier = createVerifier({ ...idp.verifierOptions(), realm: hostileRealm });
  await verifier.warmUp();
  good = await idp.mint({ sub: 'alice', scope: 'tools:read' });
  other = await idp.mint({ sub: 'mallory', scope: 'tools:admin' });
});
afterAll(async () => {
  await verifier.close();
  await idp.close();
});

function expressApp(express: typeof express5) {
  const app = express();
  const who = (req: express5.Request, res: express5.Response) => {
    res.json({ subject: req.amas?.auth?.subject ?? null });
  };
  app.get('/me', expressAuth(verifier), who);
  app.get('/optional', expressAuth(verifier, { optional: true }), who);
  app.get('/scoped', expressAuth(verifier), expressScopes(hostileScope, { realm: hostileRealm }), who);
  return app;
}

function koaApp(Koa: typeof Koa3) {
  const app = new Koa();
  const router = new Router();
  const who = (ctx: Koa3.Context) => {
    ctx.body = { subject: ctx.state.amas?.auth?.subject ?? null };
  };
  router.get('/me', koaAuth(verifier), who);
  router.get('/optional', koaAuth(verifier, { optional: true }), who);
  router.get('/scoped', koaAuth(verifier), koaScopes(hostileScope, { realm: hostileRealm }), who);
  app.use(router.routes());
  return app.callback();
}

describe.each([
  ['Express 5', () => expressApp(express5)],
  ['Express 4', () => expressApp(express4 as typeof express5)],
  ['Koa 3', () => koaApp(Koa3)],
  ['Koa 2', () => koaApp(Koa2 as typeof Koa3)],
])('%s', (_name, app) => {
  let server: Listening;
  beforeAll(async () => {
    server = await listen(app());
  });
  afterAll(() => server.close());

  it('sanity: one Authorization header with a genuine token passes', async () => {
    const res = await get(server.url, '/me', [`Authorization: Bearer ${good}`]);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ subject: 'alice' });
  });

  it.each([
    ['genuine first', () => [good, other]],
    ['genuine second', () => [other, good]],
    ['a garbage second', () => [good, 'garbage']],
  ])(
    'answers 400 to two Authorization headers on the wire (%s), never picking one',
    async (_case, tokens) => {
      const [a, b] = tokens();
      for (const path of ['/me', '/optional']) {
        const res = await get(server.url, path, [`Authorization: Bearer ${a}`, `authorization: Bearer ${b}`]);
        expect(res.status).toBe(400);
        expect(JSON.parse(res.body)).toMatchObject({ error: 'invalid_request' });
      }
    },
  );

  it('answers 400 to a second Authorization header of another scheme', async () => {
    const res = await get(server.url, '/me', [`Authorization: Bearer ${good}`, 'Authorization: Basic YTpi']);
    expect(res.status).toBe(400);
  });

  it.each([
    ['two spaces', (t: string) => `bearer  ${t}`],
    ['a tab', (t: string) => `BEARER\t${t}`],
    ['trailing spaces', (t: string) => `Bearer ${t}   `],
  ])('accepts the scheme with %s', async (_case, value) => {
    const res = await get(server.url, '/me', [`Authorization: ${value(good)}`]);
    expect(res.status).toBe(200);
  });

  it.each([
    ['a trailing dot', (t: string) => `Bearer ${t}.`, 401, 'token_malformed'],
    ['a second word', (t: string) => `Bearer ${t} x`, 401, 'token_malformed'],
    ['a comma-joined second credential', (t: string) => `Bearer ${t}, Bearer ${t}`, 401, 'token_malformed'],
    ['a comma instead of a space', (t: string) => `Bearer,${t}`, 401, 'token_missing'],
    ['no separator', (t: string) => `Bearer${t}`, 401, 'token_missing'],
    ['another scheme first', (t: string) => `Basic YTpi, Bearer ${t}`, 401, 'token_missing'],
    ['no token', () => 'Bearer', 400, 'invalid_request'],
    ['only spaces after the scheme', () => 'Bearer    ', 400, 'invalid_request'],
    ['a quoted token', (t: string) => `Bearer "${t}"`, 401, 'token_malformed'],
    ['percent-encoded dots', (t: string) => `Bearer ${t.replaceAll('.', '%2E')}`, 401, 'token_malformed'],
    [
      'a 9000-character token',
      () => `Bearer ${'a'.repeat(3000)}.${'b'.repeat(3000)}.${'c'.repeat(3000)}`,
      401,
      'token_malformed',
    ],
  ])('refuses a header with %s', async (_case, value, status, code) => {
    const res = await get(server.url, '/me', [`Authorization: ${value(good)}`]);
    expect(res.status).toBe(status);
    expect(JSON.parse(res.body)).toMatchObject({ error: code });
  });

  it('survives an Authorization header over 16 KiB (Node answers 431) and keeps serving', async () => {
    const res = await get(server.url, '/me', [`Authorization: Bearer ${'a'.repeat(20_000)}`]);
    expect(res.status).toBe(431);
    expect((await get(server.url, '/me', [`Authorization: Bearer ${good}`])).status).toBe(200);
  });

  it('never puts hostile kid, realm or scope text into headers or bodies (no header injection, no 500)', async () => {
    const hostileKid = await idp.mint(
      {},
      { kid: idp.kid, header: { kid: 'x"\r\nSet-Cookie: kid=1\r\n\r\n<script>' } },
    );
    const cases = [
      await get(server.url, '/me', [`Authorization: Bearer ${hostileKid}`]),
      await get(server.url, '/me', []),
      await get(server.url, '/scoped', [`Authorization: Bearer ${good}`]),
    ];
    expect(cases.map((c) => c.status)).toEqual([401, 401, 403]);
    for (const res of cases) {
      const names = res.headers.map(([k]) => k);
      expect(names).not.toContain('set-cookie');
      expect(names.filter((k) => k === 'www-authenticate')).toHaveLength(1);
      const challenge = res.headers.find(([k]) => k === 'www-authenticate')?.[1] ?? '';
      expect(challenge).toMatch(/^Bearer realm="toolsSet-Cookie: realm=1 {2}"/);
      expect(challenge).toMatch(/^[\x20-\x7e]+$/);
      expect(challenge).not.toMatch(/kid=1|script>/);
      const body = JSON.parse(res.body) as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(['error', 'message']);
      expect(res.body).not.toMatch(/Set-Cookie|script>|scope=1/);
      expect(res.headers).toContainEqual(['cache-control', 'no-store']);
    }
    const scoped = cases[2]?.headers.find(([k]) => k === 'www-authenticate')?.[1];
    expect(scoped).toContain('scope="tools:adminSet-Cookie:scope=1"');
  });

  it('answers a token that is garbage of every kind with 401 and a fixed message, never echoing it', async () => {
    const messages = new Set<string>();
    for (const token of [
      `${b64({ alg: 'RS256', kid: 'k' })}.${b64({ iss: idp.issuer, sub: '<img src=x onerror=alert(1)>' })}.c2ln`,
      `${b64({ alg: 'none' })}.${b64({ iss: idp.issuer })}.`,
      `${b64({ alg: 'RS256', kid: 'a'.repeat(300) })}.${b64({})}.c2ln`,
      'e30.e30.e30',
      `${good.slice(0, -4)}AAAA`,
    ]) {
      const res = await get(server.url, '/me', [`Authorization: Bearer ${token}`]);
      expect(res.status).toBe(401);
      const body = JSON.parse(res.body) as { error: string; message: string };
      messages.add(body.message);
      for (const part of token.split('.').filter((p) => p.length >= 6)) expect(res.body).not.toContain(part);
      expect(res.body).not.toContain('onerror');
    }
    expect(messages.size).toBeGreaterThan(1);
  });
});

describe('plain Node http with verifyRequest(req)', () => {
  it('answers 400 to two Authorization headers on an IncomingMessage', async () => {
    const server = createServer((req, res) => {
      verifier.verifyRequest(req).then(
        (p) => res.writeHead(200).end(p.subject),
        (err: unknown) => {
          const status = isOidcError(err) ? err.status : 500;
          res.writeHead(status).end(isOidcError(err) ? err.code : 'crash');
        },
      );
    });
    const l = await new Promise<{ url: string }>((resolve) =>
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolve({ url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` });
      }),
    );
    expect((await get(l.url, '/', [`Authorization: Bearer ${good}`])).status).toBe(200);
    const res = await get(l.url, '/', [`Authorization: Bearer ${good}`, `Authorization: Bearer ${other}`]);
    expect(res.status).toBe(400);
    expect(res.body).toBe('invalid_request');
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

describe('cookie tokens on the wire', () => {
  let cookieVerifier: Verifier;
  beforeAll(() => {
    cookieVerifier = createVerifier({ ...idp.verifierOptions(), tokenSources: { cookie: 'at' } });
  });
  afterAll(() => cookieVerifier.close());

  it.each([
    [
      'Express 5',
      () => {
        const app = express5();
        app.get('/me', expressAuth(cookieVerifier), (req, res) => {
          res.json({ subject: req.amas?.auth?.subject ?? null });
        });
        return app;
      },
    ],
    [
      'Koa 3',
      () => {
        const app = new Koa3();
        app.use(koaAuth(cookieVerifier));
        app.use((ctx) => {
          ctx.body = { subject: ctx.state.amas?.auth?.subject ?? null };
        });
        return app.callback();
      },
    ],
  ])(
    '%s: one token cookie passes; the cookie twice, in one or two Cookie headers, or beside a bearer header, is 400',
    async (_name, app) => {
      const server = await listen(app());
      expect((await get(server.url, '/me', [`Cookie: theme=dark; at=${good}`])).status).toBe(200);
      for (const lines of [
        [`Cookie: at=${good}; at=${other}`],
        [`Cookie: at=${good}`, `Cookie: at=${other}`],
        [`Cookie: at=${other}`, `Authorization: Bearer ${good}`],
        [`Cookie: at=${good}`, `Authorization: Bearer ${good}`],
      ]) {
        const res = await get(server.url, '/me', lines);
        expect(res.status).toBe(400);
        expect(JSON.parse(res.body)).toMatchObject({ error: 'invalid_request' });
      }
      await server.close();
    },
  );
});
