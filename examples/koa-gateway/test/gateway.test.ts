import { gatewaySuite } from '../../gateway-common/test/gateway-suite.js';
import { createApp } from '../src/app.js';

gatewaySuite('koa', (services) => createApp(services).callback());
