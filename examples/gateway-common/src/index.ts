export { type Answer, readiness, runTool, toolNotImplemented } from './answers.js';
export { GATEWAY_ENV_VARS, type GatewayConfig, readConfig } from './config.js';
export { type EmbeddedServices, roleData, startEmbeddedServices } from './embedded.js';
export { DEMO_CLIENTS, type DemoClientId, INVOKE_SCOPE } from './identities.js';
export { type CreateHandler, type RunningGateway, runDemo, serveUntilSignal, startGateway } from './serve.js';
export { createGatewayServices, type GatewayServices } from './services.js';
export { createToolbox, type ToolHandler, ToolInputError } from './tools/index.js';
export { runWalkthrough, type StepResult, type WalkthroughOptions } from './walkthrough.js';
