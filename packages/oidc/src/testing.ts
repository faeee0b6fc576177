import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

/**
 * Signing algorithms the test issuer can use.
 *
 * @example
 * ```ts
 * const alg: TestIssuerAlgorithm = 'ES256';
 * ```
 */
export type TestIssuerAlgorithm = 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA';

/**
 * A client of the test issuer's token endpoint (`grant_type=client_credentials`).
 *
 * @example
 * ```ts
 * const client: TestClient = { secret: 's3cret', scopes: ['tools:run'], claims: { agent_role: 'code_reviewer' } };
 * ```
 */
export interface TestClient {
  secret: string;
  /** Scopes the client may request; all of them when it requests none. */
  scopes?: string[];
  /** Extra claims put in every token minted for the client. */
  claims?: Record<string, unknown>;
}

/**
 * Options of {@link createTestIssuer}.
 *
 * @example
 * ```ts
 * const idp = await createTestIssuer({ audience: 'https://api.test', algorithm: 'ES256' });
 * ```
 */
export interface TestIssuerOptions {
  /** `aud` of minted tokens. Default `'https://api.test'`. */
  audience?: string | string[];
  /** Signing algorithm. Default `'RS256'`. */
  algorithm?: TestIssuerAlgorithm;
  /** A path appended to `http://127.0.0.1:<port>` to form the issuer (for multi-tenant tests). */
  path?: string;
  /** Lifetime of minted tokens, in seconds. Default 3600. */
  tokenTtl?: number;
  /** Clients of the token endpoint, by `client_id`. */
  clients?: Record<string, TestClient>;
}

/**
 * Options of {@link TestIssuer.mint}.
 *
 * @example
 * ```ts
 * await idp.mint({ sub: 'alice' }, { expiresIn: -60 }); // an expired token
 * ```
 */
export interface MintOptions {
  /** Seconds until `exp` (negative: already expired). Default: the issuer's `tokenTtl`. */
  expiresIn?: number;
  /** Seconds until `nbf` (positive: not valid yet). No `nbf` by default. */
  notBefore?: number;
  /** The `kid` of the published key to sign with. Default: the current signing key. */
  kid?: string;
  /** The `typ` header. Default `'at+jwt'` (RFC 9068). */
  typ?: string;
  /** Extra protected-header parameters (for attack tests: `jku`, `x5u`, `crit`, ...). */
  header?: Record<string, unknown>;
  /** Claims to leave out (for example `['exp']`). */
  omit?: string[];
}

/**
 * How the test issuer misbehaves after {@link TestIssuer.fail}:
 * `down` resets every connection, `slow` answers after `delayMs`, `error` answers `status` (500),
 * `garbage` answers 200 with a body that is not JSON, `huge` answers 200 with `sizeBytes` of JSON,
 * `many-keys` serves a JWKS with `keyCount` keys, `redirect` answers 302 to `location`.
 *
 * @example
 * ```ts
 * idp.fail('error', { status: 503, target: 'jwks' });
 * ```
 */
export type FailureMode = 'down' | 'slow' | 'error' | 'garbage' | 'huge' | 'many-keys' | 'redirect';

/**
 * Options of {@link TestIssuer.fail}.
 *
 * @example
 * ```ts
 * idp.fail('slow', { delayMs: 10_000, target: 'all' });
 * ```
 */
export interface FailureOptions {
  /** Which endpoint misbehaves. Default `'jwks'`. */
  target?: 'jwks' | 'discovery' | 'all';
  /** `slow`: how long to wait before answering. Default 10 000. */
  delayMs?: number;
  /** `error`: the HTTP status. Default 500. */
  status?: number;
  /** `huge`: the body size. Default 8 MiB. */
  sizeBytes?: number;
  /** `many-keys`: how many keys. Default 5000. */
  keyCount?: number;
  /** `redirect`: where to. Default: the same JWKS on a `/moved` path. */
  location?: string;
}

/**
 * Request counters of the test issuer, for asserting how often a verifier fetched.
 *
 * @example
 * ```ts
 * expect(idp.requests.jwks).toBe(1);
 * ```
 */
export interface TestIssuerRequests {
  readonly discovery: number;
  readonly jwks: number;
  readonly token: number;
}

/**
 * A running test issuer. See {@link createTestIssuer}.
 *
 * @example
 * ```ts
 * const token = await idp.mint({ sub: 'alice', scope: 'tools:run' });
 * ```
 */
export interface TestIssuer {
  /** The issuer (`iss`), `http://127.0.0.1:<port>[path]`. */
  readonly issuer: string;
  readonly discoveryUri: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly audience: string | string[];
  /** The `kid` of the current signing key. */
  readonly kid: string;
  /** The `kid`s currently published in the JWKS. */
  readonly kids: readonly string[];
  readonly requests: TestIssuerRequests;
  /** `{ issuer, audience }`, ready to spread into `createVerifier`. */
  verifierOptions(): { issuer: string; audience: string | string[] };
  /** Mints a signed access token; `scope` may be a string or a list. */
  mint(claims?: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** Publishes a new key and signs with it from now on; the old key stays published unless `removeOld`. Returns the new `kid`. */
  rotate(options?: { removeOld?: boolean }): Promise<string>;
  /** Publishes a new key without signing with it. Returns its `kid`. */
  addKey(): Promise<string>;
  /** Removes a key from the JWKS (tokens it signed stop verifying once verifiers refresh). */
  removeKey(kid: string): void;
  /** Makes an endpoint misbehave until {@link TestIssuer.recover}. */
  fail(mode: FailureMode, options?: FailureOptions): void;
  /** Ends every failure mode. */
  recover(): void;
  /** Resets the request counters. */
  resetRequests(): void;
  /** Stops the server and drops every connection. */
  close(): Promise<void>;
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function newKey(alg: TestIssuerAlgorithm): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, privateKey, publicJwk };
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 65_536) throw new Error('body too large');
  }
  return body;
}

/**
 * Starts an OpenID provider for tests on `127.0.0.1` (port chosen by the OS): it serves discovery
 * and a JWKS, mints access tokens with any claims and scopes, rotates and removes keys, has a
 * `client_credentials` token endpoint, and can be made to fail (down, slow, HTTP errors, garbage,
 * huge bodies, thousands of keys, redirects). For tests and local examples only: it keeps private
 * keys in memory and checks nothing but the client secret.
 *
 * @example
 * ```ts
 * import { createVerifier } from '@amas/oidc';
 * import { createTestIssuer } from '@amas/oidc/testing';
 *
 * const idp = await createTestIssuer({ audience: 'https://api.test' });
 * const verifier = createVerifier(idp.verifierOptions());
 * const token = await idp.mint({ sub: 'alice', scope: 'tools:run' });
 * const principal = await verifier.verify(token); // principal.scopes: ['tools:run']
 * await idp.close();
 * ```
 */
export async function createTestIssuer(options: TestIssuerOptions = {}): Promise<TestIssuer> {
  const alg = options.algorithm ?? 'RS256';
  const audience = options.audience ?? 'https://api.test';
  const tokenTtl = options.tokenTtl ?? 3600;
  const path = (options.path ?? '').replace(/\/+$/, '');
  const clients = new Map(Object.entries(options.clients ?? {}));
  const keys: SigningKey[] = [await newKey(alg)];
  let current = keys[0] as SigningKey;
  let failure: { mode: FailureMode; options: FailureOptions } | undefined;
  const counts = { discovery: 0, jwks: 0, token: 0 };
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (failure?.mode === 'down' && failure.options.target === 'all') socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${origin}${path}`;
  const discoveryUri = `${issuer}/.well-known/openid-configuration`;
  const jwksUri = `${issuer}/jwks`;
  const tokenEndpoint = `${issuer}/token`;

  const jwks = () => ({ keys: keys.map((k) => k.publicJwk) });

  async function mint(claims: Record<string, unknown> = {}, mintOptions: MintOptions = {}): Promise<string> {
    const key = mintOptions.kid === undefined ? current : keys.find((k) => k.kid === mintOptions.kid);
    if (!key) throw new Error(`no published key with kid ${mintOptions.kid}`);
    const now = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = {
      iss: issuer,
      aud: audience,
      sub: 'test-user',
      client_id: 'test-client',
      iat: now,
      exp: now + (mintOptions.expiresIn ?? tokenTtl),
      jti: randomUUID(),
      ...(mintOptions.notBefore === undefined ? {} : { nbf: now + mintOptions.notBefore }),
      ...claims,
    };
    if (Array.isArray(payload.scope)) payload.scope = payload.scope.join(' ');
    for (const name of mintOptions.omit ?? []) delete payload[name];
    return new SignJWT(payload)
      .setProtectedHeader({ alg, kid: key.kid, typ: mintOptions.typ ?? 'at+jwt', ...mintOptions.header })
      .sign(key.privateKey);
  }

  function failing(target: 'jwks' | 'discovery'): FailureOptions | undefined {
    if (!failure) return undefined;
    const t = failure.options.target ?? 'jwks';
    return t === 'all' || t === target ? failure.options : undefined;
  }

  function misbehave(res: ServerResponse, req: IncomingMessage, body: unknown, opts: FailureOptions): void {
    const mode = (failure as { mode: FailureMode }).mode;
    switch (mode) {
      case 'down':
        req.socket.destroy();
        return;
      case 'slow': {
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (!res.destroyed) send(res, 200, body);
        }, opts.delayMs ?? 10_000);
        timers.add(timer);
        return;
      }
      case 'error':
        send(res, opts.status ?? 500, { error: 'server_error' });
        return;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('<html>this is not json');
        return;
      case 'huge': {
        const size = opts.sizeBytes ?? 8 * 1024 * 1024;
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          while (sent < size) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end('{}');
        };
        res.on('close', () => {
          sent = size;
        });
        pump();
        return;
      }
      case 'many-keys': {
        const first = keys[0]?.publicJwk ?? {};
        const count = opts.keyCount ?? 5000;
        send(res, 200, { keys: Array.from({ length: count }, (_, i) => ({ ...first, kid: `k${i}` })) });
        return;
      }
      case 'redirect':
        send(res, 302, '', { location: opts.location ?? `${issuer}/moved` });
        return;
    }
  }

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counts.token++;
    if (req.method !== 'POST') return send(res, 405, { error: 'invalid_request' });
    const form = new URLSearchParams(await readBody(req));
    let id = form.get('client_id') ?? '';
    let secret = form.get('client_secret') ?? '';
    const auth = req.headers.authorization;
    if (auth?.toLowerCase().startsWith('basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString();
      const colon = decoded.indexOf(':');
      id = decodeURIComponent(decoded.slice(0, colon));
      secret = decodeURIComponent(decoded.slice(colon + 1));
    }
    const client = clients.get(id);
    if (!client || client.secret !== secret) return send(res, 401, { error: 'invalid_client' });
    if (form.get('grant_type') !== 'client_credentials')
      return send(res, 400, { error: 'unsupported_grant_type' });
    const allowed = client.scopes ?? [];
    const requested = (form.get('scope') ?? '').split(' ').filter(Boolean);
    if (requested.some((s) => !allowed.includes(s))) return send(res, 400, { error: 'invalid_scope' });
    const scope = (requested.length > 0 ? requested : allowed).join(' ');
    const accessToken = await mint({ ...client.claims, sub: id, client_id: id, ...(scope ? { scope } : {}) });
    send(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: tokenTtl, scope });
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = (req.url ?? '/').split('?')[0];
    const route = url?.startsWith(path) ? url.slice(path.length) : '';
    if (route === '/.well-known/openid-configuration') {
      counts.discovery++;
      const body = {
        issuer,
        jwks_uri: jwksUri,
        token_endpoint: tokenEndpoint,
        grant_types_supported: ['client_credentials'],
        response_types_supported: ['token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: [alg],
        access_token_signing_alg_values_supported: [alg],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      };
      const f = failing('discovery');
      return f ? misbehave(res, req, body, f) : send(res, 200, body);
    }
    if (route === '/jwks') {
      counts.jwks++;
      const f = failing('jwks');
      return f
        ? misbehave(res, req, jwks(), f)
        : send(res, 200, jwks(), { 'content-type': 'application/jwk-set+json' });
    }
    if (route === '/token') {
      token(req, res).catch(() => {
        if (!res.headersSent) send(res, 400, { error: 'invalid_request' });
      });
      return;
    }
    send(res, 404, { error: 'not_found' });
  });

  return {
    issuer,
    discoveryUri,
    jwksUri,
    tokenEndpoint,
    audience,
    get kid() {
      return current.kid;
    },
    get kids() {
      return keys.map((k) => k.kid);
    },
    get requests() {
      return { ...counts };
    },
    verifierOptions: () => ({ issuer, audience }),
    mint,
    async rotate(rotateOptions = {}) {
      const key = await newKey(alg);
      if (rotateOptions.removeOld) keys.splice(0, keys.length);
      keys.push(key);
      current = key;
      return key.kid;
    },
    async addKey() {
      const key = await newKey(alg);
      keys.push(key);
      return key.kid;
    },
    removeKey(kid) {
      const i = keys.findIndex((k) => k.kid === kid);
      if (i >= 0) keys.splice(i, 1);
    },
    fail(mode, failOptions = {}) {
      failure = { mode, options: failOptions };
    },
    recover() {
      failure = undefined;
    },
    resetRequests() {
      counts.discovery = 0;
      counts.jwks = 0;
      counts.token = 0;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
