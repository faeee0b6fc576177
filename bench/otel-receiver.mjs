// OTLP/HTTP JSON receiver used by the benchmark, run as its own process so that decoding the
// exported spans does not compete with the server under test inside one event loop.
import { createServer } from 'node:http';

let spans = 0;
let requests = 0;
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ spans, requests }));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    requests++;
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    for (const rs of body.resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
