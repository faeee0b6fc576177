import { serveUntilSignal } from '@amas-examples/gateway-common';
import { createApp } from './app.js';

// `pnpm start`: the Koa gateway until SIGTERM/SIGINT. Every setting comes from the environment
// (see examples/README.md); without any, it runs on embedded defaults.
await serveUntilSignal('koa', (services) => createApp(services).callback());
