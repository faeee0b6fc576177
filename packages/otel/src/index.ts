export type { TelemetryErrorCode, TelemetryErrorOptions } from './errors.js';
export { isTelemetryError, TelemetryError, TelemetryErrorStatus } from './errors.js';
