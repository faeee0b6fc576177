import { lookup } from 'node:dns/promises';
import { Socket } from 'node:net';
import { ToolInputError } from './sandbox.js';

/** Ports `run_scan` tries when the input names none. */
export const DEFAULT_PORTS = [22, 80, 443, 3000, 5432, 6379, 8181, 9090];

function probe(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.connect(port, address);
  });
}

/**
 * `run_scan`: a `passive` scan resolves the target's addresses only; an `active` scan also opens a TCP
 * connection to each port (which is why the contract and the policy want a human to approve it).
 * Only targets in `allowedTargets` may be scanned: a scanner that reaches any host would let an agent
 * probe the internal network (SSRF).
 */
export async function runScan(
  allowedTargets: readonly string[],
  input: { target: string; mode: 'passive' | 'active'; ports?: number[] },
) {
  if (!allowedTargets.includes(input.target)) {
    throw new ToolInputError(`target is not in this gateway's scan scope (${allowedTargets.join(', ')})`);
  }
  const addresses = (await lookup(input.target, { all: true })).map((a) => a.address).sort();
  if (input.mode === 'passive') return { target: input.target, mode: input.mode, addresses, ports: [] };
  const address = addresses.find((a) => a.includes('.')) ?? addresses[0];
  if (address === undefined) throw new ToolInputError(`target has no address: ${input.target}`);
  const ports = [...new Set(input.ports ?? DEFAULT_PORTS)].slice(0, 64).sort((a, b) => a - b);
  const states = await Promise.all(
    ports.map(async (port) => ({ port, open: await probe(address, port, 300) })),
  );
  return { target: input.target, mode: input.mode, addresses, ports: states };
}
