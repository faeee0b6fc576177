import { runDemo } from '@amas-examples/gateway-common';
import { createApp } from './app.js';

// The README's first command: the Koa gateway on embedded defaults (test issuer, OPA-compatible server,
// memory stores, all on 127.0.0.1), then the scripted walk-through against it.
await runDemo('koa', (services) => createApp(services).callback());
