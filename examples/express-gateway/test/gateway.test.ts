import { gatewaySuite } from '../../gateway-common/test/gateway-suite.js';
import { createApp } from '../src/app.js';

gatewaySuite('express', (services) => createApp(services));
