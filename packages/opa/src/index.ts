export type { OpaErrorCode, OpaErrorOptions } from './errors.js';
export { isOpaError, OpaError, OpaErrorStatus } from './errors.js';
