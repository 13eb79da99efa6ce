// A hostile server, run in this process on loopback: bombs, bodies that never end, huge error
// pages. Every case must come back as a typed error at once, with memory flat, through the
// Node entry's own transport and through a fetch-shaped one (the path browsers, Deno and Bun use).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxClient, SandboxError, RemoteAPIError } from 'tensorlake-snapshots';
import { startHostileServer } from './helpers/hostile-server.mjs';
import http from 'node:http';

const MiB = 1024 * 1024;
const LIMIT = 4 * MiB;
let hostile;
let base;
before(async () => {
  hostile = await startHostileServer();
  base = hostile.url;
});
after(() => hostile.stop());

// The global fetch, wrapped so the package takes its fetch-shaped path (as in browsers).
const viaFetch = (url, init) => fetch(url, init);
const transports = [['node:http transport', {}], ['fetch', { fetch: viaFetch }]];

for (const [name, extra] of transports) {
  test(`${name}: bodies over maxResponseBytes fail at once as RESPONSE_TOO_LARGE, compressed or not`, async () => {
    const client = new SandboxClient({ apiUrl: base, maxRetries: 2, maxResponseBytes: LIMIT, ...extra });
    for (const id of hostile.oversized) {
      const rss = process.memoryUsage().rss;
      const started = Date.now();
      const err = await client.getSnapshot(id).then(() => assert.fail(`${id}: expected a failure`), (e) => e);
      assert.ok(err instanceof SandboxError, `${id}: ${err}`);
      assert.equal(err.code, 'RESPONSE_TOO_LARGE', `${id}: ${err.message}`);
      assert.match(err.message, /maxResponseBytes \(4194304 bytes\)/);
      assert.ok(Date.now() - started < 10_000, `${id}: took ${Date.now() - started} ms`);
      const grew = process.memoryUsage().rss - rss;
      assert.ok(grew < 200 * MiB, `${id}: RSS grew by ${Math.round(grew / MiB)} MiB`);
    }
  });

  test(`${name}: a big error page gives a short responseMessage`, async () => {
    const client = new SandboxClient({ apiUrl: base, maxRetries: 0, ...extra });
    const err = await client.getSnapshot('big-error').then(() => assert.fail('expected a 400'), (e) => e);
    assert.ok(err instanceof RemoteAPIError);
    assert.equal(err.statusCode, 400);
    assert.ok(err.responseMessage.length <= 16 * 1024, `${err.responseMessage.length} chars`);
    assert.ok(err.message.length <= 17 * 1024);
  });
}

test('the default limit is 64 MiB, and the option is validated', async () => {
  const client = new SandboxClient({ apiUrl: base, maxRetries: 0 });
  const err = await client.getSnapshot('close').then(() => assert.fail('expected a failure'), (e) => e);
  // 65 MiB sent, then the connection closed: over the default limit.
  assert.equal(err.code, 'RESPONSE_TOO_LARGE', err.message);
  assert.throws(() => new SandboxClient({ apiUrl: base, maxResponseBytes: 10 }), RangeError);
  assert.throws(() => new SandboxClient({ apiUrl: base, maxResponseBytes: 1.5e3 + 0.5 }), RangeError);
});

test('twenty follows sharing one AbortSignal print no MaxListenersExceededWarning either', async () => {
  // The Node transport's stream path added a listener of its own per follow.
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url.includes('/follow')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: output\ndata: {"line":"a","timestamp":1}\n\n');
      return;
    }
    res.end(JSON.stringify({ id: 'sbx', status: 'running', sandbox_url: `http://127.0.0.1:${server.address().port}` }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const warnings = [];
  const onWarning = (w) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    for (const extra of [{}, { fetch: viaFetch }]) {
      const client = SandboxClient.forLocalhost({ apiUrl: `http://127.0.0.1:${server.address().port}`, ...extra });
      const sandbox = await client.connect('sbx');
      const controller = new AbortController();
      const follows = Array.from({ length: 20 }, async () => {
        for await (const event of sandbox.followStdout(1, { signal: controller.signal })) assert.equal(event.line, 'a');
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      controller.abort(new Error('stop'));
      const results = await Promise.allSettled(follows);
      assert.ok(results.every((r) => r.status === 'rejected' && r.reason.message === 'stop'), JSON.stringify(results));
    }
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
    server.closeAllConnections();
    server.close();
  }
  assert.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
});

test('twenty calls sharing one AbortSignal print no MaxListenersExceededWarning', async () => {
  const warnings = [];
  const onWarning = (w) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    for (const extra of [{}, { fetch: viaFetch }]) {
      const controller = new AbortController();
      const client = new SandboxClient({ apiUrl: base, maxRetries: 0, ...extra });
      const calls = Array.from({ length: 20 }, (_, i) => (i % 2
        ? client.getSnapshot('hang', { signal: controller.signal })
        : client.waitForSnapshot('hang', { signal: controller.signal })).then(() => 'resolved', (e) => e));
      await new Promise((resolve) => setTimeout(resolve, 300));
      controller.abort(new Error('stop'));
      const results = await Promise.all(calls);
      assert.ok(results.every((r) => r instanceof Error && r.message === 'stop'), String(results));
    }
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
});
