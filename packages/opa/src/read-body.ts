import type { IncomingMessage } from 'node:http';
import { OpaError } from './errors.js';

const MAX = 16 * 1024;

/**
 * Reads a small JSON body from a request nobody has parsed yet (at most 16 KiB). An empty body is
 * `undefined`; anything else that is not JSON is an {@link OpaError} `input_invalid`.
 *
 * @example
 * ```ts
 * const body = await readJsonBody(req);
 * ```
 */
export function readJsonBody(req: IncomingMessage): Promise<unknown> {
  if (req.readableEnded || req.complete) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX) {
        req.pause();
        reject(new OpaError('input_invalid', 'the request body is too large'));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (text === '') return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new OpaError('input_invalid', 'the request body is not JSON'));
      }
    });
    req.on('error', () => reject(new OpaError('input_invalid', 'the request body could not be read')));
  });
}
