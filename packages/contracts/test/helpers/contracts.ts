import type { ContractDocument } from '../../src/types.js';

/** A small contract that exercises every feature: schemas, approvals, budgets per principal and session. */
export function sampleContract(overrides: Partial<ContractDocument> = {}): ContractDocument {
  return {
    name: 'reader',
    version: '2.1.0',
    description: 'Reads files and fetches URLs.',
    tools: {
      read_file: {
        input: {
          type: 'object',
          additionalProperties: false,
          required: ['path'],
          properties: {
            path: { type: 'string', minLength: 1, maxLength: 100 },
            max_bytes: { type: 'integer', minimum: 1, maximum: 1000 },
          },
        },
        output: {
          type: 'object',
          required: ['content'],
          properties: { content: { type: 'string' } },
        },
        effects: { 'file.read': 1, bytes_read: { input: 'max_bytes', default: 100 } },
      },
      fetch_url: {
        input: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: { url: { type: 'string', format: 'uri' }, method: { enum: ['GET', 'POST'] } },
        },
        approval: {
          mode: 'when',
          when: [{ field: 'method', op: 'equals', value: 'POST' }],
          approvers: ['approvals:net'],
        },
        effects: { network: 1 },
      },
      wipe: {
        input: { type: 'object' },
        approval: { mode: 'always', approvers: ['approvals:admin'], ttl_seconds: 60 },
      },
      chat: { input: { type: 'object', properties: { text: { type: 'string' } } } },
    },
    budgets: [
      { effect: 'file.read', limit: 5, window: '1h', per: 'principal' },
      { effect: 'bytes_read', limit: 1000, window: '1h' },
      { effect: 'network', limit: 3, window: 60 },
      { tool: 'chat', limit: 2, window: '1m', per: 'session' },
    ],
    ...overrides,
  };
}
