export type { OidcErrorCode, OidcErrorOptions } from './errors.js';
export { isOidcError, OidcError, OidcErrorStatus } from './errors.js';
