/**
 * Every code a {@link ContractError} can carry. Codes are stable: they are part of the public API,
 * shown to operators and clients, and never renamed within a major version.
 */
export type ContractErrorCode =
  | 'role_unknown'
  | 'tool_not_allowed'
  | 'input_invalid'
  | 'action_invalid'
  | 'output_invalid'
  | 'budget_exhausted'
  | 'approval_required'
  | 'budget_store_unavailable'
  | 'contract_invalid'
  | 'config_invalid';

/** The HTTP status each code maps to by default. */
export const ContractErrorStatus: Readonly<Record<ContractErrorCode, number>> = Object.freeze({
  role_unknown: 403,
  tool_not_allowed: 403,
  input_invalid: 400,
  action_invalid: 400,
  output_invalid: 502,
  budget_exhausted: 429,
  approval_required: 403,
  budget_store_unavailable: 503,
  contract_invalid: 500,
  config_invalid: 500,
});

const BRAND = Symbol.for('@amas/contracts/error');

/** One problem found in a contract file: where it is and what is wrong. */
export interface ContractIssue {
  /** The file the contract came from, when it came from a file. */
  readonly file?: string;
  /** Dotted path inside the contract (`tools.read_file.input.type`); empty for the whole document. */
  readonly path: string;
  /** 1-based line and column in the file, when known. */
  readonly line?: number;
  readonly column?: number;
  /** What is wrong, in words. */
  readonly message: string;
}

/** Options of the {@link ContractError} constructor. */
export interface ContractErrorOptions {
  /** HTTP status; defaults to the status of the code. */
  status?: number;
  /** HTTP headers an adapter sends with the error response (for example `WWW-Authenticate`). */
  headers?: Record<string, string>;
  /** The underlying error, kept for logs; never sent to clients. */
  cause?: unknown;
  /** For `contract_invalid`: every problem found, with file and path. */
  issues?: readonly ContractIssue[];
}

/**
 * The one error family of `@amas/contracts`: every failure while checking an agent action against its role contract is one of these,
 * with a stable {@link ContractErrorCode}, an HTTP `status` and optional response `headers`.
 * Messages never contain tokens, secrets or stack traces of other errors.
 *
 * @example
 * ```ts
 * try {
 *   // ...
 * } catch (err) {
 *   if (isContractError(err) && err.code === 'tool_not_allowed') {
 *     res.status(err.status).set(err.headers).json({ error: err.code });
 *   }
 * }
 * ```
 */
export class ContractError extends Error {
  override readonly name = 'ContractError';
  /** Stable, machine-readable reason. */
  readonly code: ContractErrorCode;
  /** HTTP status an adapter answers with. */
  readonly status: number;
  /** HTTP headers an adapter sends with the response. */
  readonly headers: Readonly<Record<string, string>>;
  /** For `contract_invalid`: every problem found, with file and path (empty otherwise). */
  readonly issues: readonly ContractIssue[];

  constructor(code: ContractErrorCode, message: string, options: ContractErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? ContractErrorStatus[code];
    this.headers = Object.freeze({ ...options.headers });
    this.issues = Object.freeze([...(options.issues ?? [])]);
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** The JSON body adapters send: the code and the message, nothing else. */
  toJSON(): { error: ContractErrorCode; message: string } {
    return { error: this.code, message: this.message };
  }
}

/**
 * Tells whether a value is a {@link ContractError}. Works across the ESM and CommonJS copies of the
 * package (where `instanceof` does not), because it checks a global symbol brand.
 *
 * @example
 * ```ts
 * if (isContractError(err)) console.warn(err.code);
 * ```
 */
export function isContractError(value: unknown): value is ContractError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
