import { sign as cryptoSign, KeyObject, randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CompactSign, type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { expect } from 'vitest';

/** A server on 127.0.0.1 (port chosen by the OS) that drops its connections when closed. */
export interface Listening {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

export async function listen(handler: RequestListener): Promise<Listening> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A JWKS endpoint under the test's control, counting its requests. */
export interface JwksServer extends Listening {
  readonly jwksUri: string;
  readonly hits: number;
  /** Replaces the handler of the JWKS route. */
  handle(fn: (req: IncomingMessage, res: ServerResponse) => void): void;
  serve(jwks: { keys: JWK[] }): void;
}

export async function jwksServer(initial: { keys: JWK[] }): Promise<JwksServer> {
  let hits = 0;
  let route = (_req: IncomingMessage, res: ServerResponse) => json(res, 200, initial);
  const l = await listen((req, res) => {
    hits++;
    route(req, res);
  });
  return {
    ...l,
    jwksUri: `${l.url}/jwks`,
    get hits() {
      return hits;
    },
    handle(fn) {
      route = fn;
    },
    serve(jwks) {
      route = (_req, res) => json(res, 200, jwks);
    },
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A key pair minted in the test, with its public JWK. */
export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

export async function makeKey(alg = 'RS256', kid: string = randomUUID()): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export const ISSUER = 'https://issuer.test/';
export const AUDIENCE = 'https://api.test';

/** Signs claims (with sensible defaults) using a test key; `header` overrides protected-header members. */
export async function sign(
  key: TestKey,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1', iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header })
    .sign(key.privateKey);
}

/** Base64url of a JSON value. */
export const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Rebuilds a token with another header and/or payload, keeping the original signature. */
export function reassemble(
  token: string,
  parts: { header?: unknown; payload?: unknown; signature?: string },
): string {
  const [h, p, s] = token.split('.');
  return [
    parts.header === undefined ? h : b64(parts.header),
    parts.payload === undefined ? p : b64(parts.payload),
    parts.signature ?? s,
  ].join('.');
}

export function decodePart(token: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] as string, 'base64url').toString());
}

/** Asserts that a promise rejects with an OidcError of this code (and the status of that code). */
export async function rejectsWith(promise: Promise<unknown>, code: string, status?: number): Promise<void> {
  await expect(promise).rejects.toMatchObject(status === undefined ? { code } : { code, status });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `fn` until it returns true or `timeoutMs` passes (on the monotonic clock: tests may fake `Date`). */
export async function eventually(fn: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 25) {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (await fn()) return;
    await sleep(stepMs);
  }
  throw new Error('condition not met in time');
}

/** Signs an exact payload string (for JSON that JSON.stringify cannot produce: 1e400, duplicate members). */
export async function signRaw(
  key: TestKey,
  header: Record<string, unknown>,
  payload: string,
): Promise<string> {
  return new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: key.alg, ...header })
    .sign(key.privateKey);
}

/**
 * Signs header and payload with Node's crypto directly (RS256 only), bypassing jose's own checks, so
 * that tests can produce what a careful library refuses to produce (unknown `crit`, weak keys).
 */
export function signUnchecked(
  privateKey: KeyObject | CryptoKey,
  header: Record<string, unknown>,
  payload: unknown,
): string {
  const input = `${b64({ alg: 'RS256', ...header })}.${b64(payload)}`;
  const key = privateKey instanceof KeyObject ? privateKey : KeyObject.from(privateKey);
  return `${input}.${cryptoSign('sha256', Buffer.from(input), key).toString('base64url')}`;
}
