// Wasm memory never shrinks, so a response copied into it costs the process that much for good.
// Failed calls against huge answers must leave the module's memory at its baseline size class.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

// The module's memory is not exported: catch the instance as the package creates it.
const instances = [];
const Instance = WebAssembly.Instance;
WebAssembly.Instance = new Proxy(Instance, {
  construct(target, args) {
    const instance = Reflect.construct(target, args);
    instances.push(instance);
    return instance;
  },
});
const { SandboxClient } = await import('tensorlake-snapshots');
WebAssembly.Instance = Instance;

const MiB = 1024 * 1024;
const memoryBytes = () => instances[0].exports.memory.buffer.byteLength;

let server;
let base;
before(async () => {
  const page = Buffer.alloc(40 * MiB, 0x78);
  server = http.createServer((req, res) => {
    if (req.url.endsWith('/snapshots/error-page')) {
      res.writeHead(500, { 'content-type': 'text/html' });
      return res.end(page);
    }
    if (req.url.endsWith('/snapshots/too-big')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(page);
    }
    if (req.url.endsWith('/snapshots/ok')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end('{"id":"ok","status":"completed"}');
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => new Promise((resolve) => server.close(resolve)));

test('a 40 MiB error page and a body over maxResponseBytes leave wasm memory at its baseline', async () => {
  assert.equal(instances.length, 1, 'the package made one wasm instance');
  const client = new SandboxClient({ apiUrl: base, maxRetries: 0, maxResponseBytes: 8 * MiB });
  await client.getSnapshot('ok');
  const baseline = memoryBytes();
  for (let i = 0; i < 3; i++) {
    const page = await client.getSnapshot('error-page').then(() => assert.fail('expected a 500'), (e) => e);
    assert.equal(page.code, 'RESPONSE_TOO_LARGE', page.message);
  }
  const roomy = new SandboxClient({ apiUrl: base, maxRetries: 0 });
  for (let i = 0; i < 3; i++) {
    const page = await roomy.getSnapshot('error-page').then(() => assert.fail('expected a 500'), (e) => e);
    assert.equal(page.statusCode, 500);
    const big = await client.getSnapshot('too-big').then(() => assert.fail('expected a failure'), (e) => e);
    assert.equal(big.code, 'RESPONSE_TOO_LARGE');
  }
  const after = memoryBytes();
  console.log(`wasm memory: ${baseline} bytes before, ${after} bytes after six failed calls on 40 MiB answers`);
  assert.ok(after - baseline <= MiB, `wasm memory grew from ${baseline} to ${after} bytes`);
});
