export type { ContractErrorCode, ContractErrorOptions } from './errors.js';
export { ContractError, ContractErrorStatus, isContractError } from './errors.js';
