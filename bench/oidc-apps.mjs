// The apps of the @amas/oidc benchmark, started in a child process of oidc.bench.mjs so that the
// load generator and the servers do not share an event loop. Every app answers the same tiny JSON
// body; only the authentication in front of it differs. Ports are reported over IPC.
import { createServer } from 'node:http';
import { createVerifier } from '@amas/oidc';
import { authenticate as amasExpress } from '@amas/oidc/express';
import { authenticate as amasKoa } from '@amas/oidc/koa';
import Router from '@koa/router';
import express from 'express';
import { expressjwt } from 'express-jwt';
import { auth as oauth2Bearer } from 'express-oauth2-jwt-bearer';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import jwksRsa from 'jwks-rsa';
import Koa from 'koa';
import koaJwt from 'koa-jwt';

const { issuer, audience, jwksUri } = JSON.parse(process.env.OIDC_BENCH ?? '{}');
const body = { ok: true };

function bearer(header) {
  const m = /^Bearer (.+)$/i.exec(header ?? '');
  return m ? m[1] : undefined;
}

// The minimal hand-written jose middleware users write: remote JWKS, jwtVerify, 401 on failure.
function joseExpress() {
  const jwks = createRemoteJWKSet(new URL(jwksUri));
  return (req, res, next) => {
    const token = bearer(req.headers.authorization);
    if (!token) return res.status(401).end();
    jwtVerify(token, jwks, { issuer, audience }).then(
      () => next(),
      () => res.status(401).end(),
    );
  };
}

function joseKoa() {
  const jwks = createRemoteJWKSet(new URL(jwksUri));
  return async (ctx, next) => {
    const token = bearer(ctx.headers.authorization);
    try {
      if (!token) throw new Error('missing');
      await jwtVerify(token, jwks, { issuer, audience });
    } catch {
      ctx.status = 401;
      return;
    }
    await next();
  };
}

const jwksRsaOptions = { jwksUri, cache: true, rateLimit: true, jwksRequestsPerMinute: 10 };

function expressApp(middleware) {
  const app = express();
  app.disable('x-powered-by');
  if (middleware) app.use(middleware);
  app.get('/', (_req, res) => res.json(body));
  app.use((err, _req, res, _next) => res.status(err.status ?? 401).end());
  return app;
}

function koaApp(middleware) {
  const app = new Koa();
  const router = new Router();
  if (middleware) app.use(middleware);
  router.get('/', (ctx) => {
    ctx.body = body;
  });
  app.use(router.routes());
  return app.callback();
}

async function amasVerifier() {
  // Default options: cache on (10 000 tokens). The cold stream uses more distinct tokens than that,
  // in round-robin, so every one of its requests misses the cache and pays for insertion and eviction.
  const verifier = createVerifier({ issuer, audience });
  await verifier.warmUp();
  return verifier;
}

const apps = {
  'express:none': expressApp(),
  'express:jose': expressApp(joseExpress()),
  'express:express-jwt': expressApp(
    expressjwt({ secret: jwksRsa.expressJwtSecret(jwksRsaOptions), algorithms: ['RS256'], issuer, audience }),
  ),
  'express:oauth2-jwt-bearer': expressApp(oauth2Bearer({ issuerBaseURL: issuer, audience })),
  'express:amas-cold': expressApp(amasExpress(await amasVerifier())),
  'express:amas-warm': expressApp(amasExpress(await amasVerifier())),
  'koa:none': koaApp(),
  'koa:jose': koaApp(joseKoa()),
  'koa:koa-jwt': koaApp(
    koaJwt({ secret: jwksRsa.koaJwtSecret(jwksRsaOptions), algorithms: ['RS256'], issuer, audience }),
  ),
  'koa:amas-cold': koaApp(amasKoa(await amasVerifier())),
  'koa:amas-warm': koaApp(amasKoa(await amasVerifier())),
};

const ports = {};
for (const [name, handler] of Object.entries(apps)) {
  const server = createServer(handler);
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  ports[name] = server.address().port;
}
process.send({ ports });
// CPU time of this process between 'start' and 'stop', so that the orchestrator can report the
// server's CPU cost per request, which the noise of a shared machine disturbs far less than req/s.
let mark = process.cpuUsage();
process.on('message', (message) => {
  if (message === 'start') {
    mark = process.cpuUsage();
    process.send({ started: true });
  } else if (message === 'stop') {
    const used = process.cpuUsage(mark);
    process.send({ cpuMicros: used.user + used.system });
  }
});
process.on('disconnect', () => process.exit(0));
