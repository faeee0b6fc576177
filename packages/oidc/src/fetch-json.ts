import { boundedSignal, untilAborted } from './until-aborted.js';

/** Why a fetch of discovery or JWKS failed; the message is for operators and holds no secrets. */
export class FetchFailure extends Error {
  override readonly name = 'FetchFailure';
}

/** Limits of one fetch. */
export interface FetchLimits {
  timeoutMs: number;
  maxBytes: number;
  fetch: typeof fetch;
  /** Aborts the fetch when the verifier is closed. */
  signal: AbortSignal;
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Checks that a URL the verifier will fetch is `https:` (or `http:` on loopback, or anywhere when
 * explicitly allowed). Returns a reason when it is not acceptable.
 */
export function urlProblem(value: string, allowInsecureHttp: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a valid URL';
  }
  if (url.username || url.password) return 'must not contain credentials';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && (allowInsecureHttp || LOOPBACK.has(url.hostname))) return undefined;
  return 'must be an https: URL (http: is accepted on loopback, or with allowInsecureHttp)';
}

async function readLimited(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  signal: AbortSignal,
): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await untilAborted(reader.read(), signal);
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) throw new FetchFailure(`response body exceeds ${maxBytes} bytes`);
      chunks.push(value);
    }
  } catch (err) {
    reader.cancel().catch(() => {});
    throw err;
  }
  return Buffer.concat(chunks, total);
}

/**
 * GETs a JSON document with a timeout that covers the body, a size limit enforced while reading,
 * no redirects (a redirect could lead to a host nobody configured) and no cookies.
 */
export async function fetchJson(url: string, limits: FetchLimits): Promise<unknown> {
  const bound = boundedSignal(limits.signal, limits.timeoutMs, 'the fetch did not finish in time');
  try {
    return await fetchWithin(url, limits, bound.signal);
  } finally {
    bound.release();
  }
}

async function fetchWithin(url: string, limits: FetchLimits, signal: AbortSignal): Promise<unknown> {
  let response: Response;
  try {
    response = await untilAborted(
      limits.fetch(url, {
        method: 'GET',
        headers: { accept: 'application/json, application/jwk-set+json' },
        redirect: 'manual',
        signal,
      }),
      signal,
    );
  } catch (cause) {
    throw new FetchFailure(signal.aborted ? 'timed out or aborted' : 'connection failed', { cause });
  }
  try {
    if (response.status !== 200) {
      throw new FetchFailure(
        response.status >= 300 && response.status < 400
          ? `redirect (HTTP ${response.status}) refused`
          : `HTTP ${response.status}`,
      );
    }
    const length = Number(response.headers.get('content-length') ?? Number.NaN);
    if (Number.isFinite(length) && length > limits.maxBytes) {
      throw new FetchFailure(`response body exceeds ${limits.maxBytes} bytes`);
    }
    if (!response.body) throw new FetchFailure('empty response body');
    let bytes: Uint8Array;
    try {
      bytes = await readLimited(response.body, limits.maxBytes, signal);
    } catch (cause) {
      if (cause instanceof FetchFailure) throw cause;
      throw new FetchFailure(signal.aborted ? 'timed out or aborted' : 'connection failed', { cause });
    }
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch (cause) {
      throw new FetchFailure('response is not valid JSON', { cause });
    }
  } finally {
    if (response.body && !response.bodyUsed) response.body.cancel().catch(() => {});
  }
}
