// A hostile server, run in this process on loopback: bombs, bodies that never end, huge error
// pages. Every case must come back as a typed error at once, with memory flat, through the
// Node entry's own transport and through a fetch-shaped one (the path browsers, Deno and Bun use).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { SandboxClient, SandboxError, RemoteAPIError } from 'tensorlake-snapshots';

const MiB = 1024 * 1024;
const LIMIT = 4 * MiB;
const CHUNK = Buffer.alloc(MiB, 0x61); // 'aaaa…': the worst case for compression ratios

// Compressed once: 256 MiB of 'a' is about 250 KB gzipped.
const BOMB = 256 * MiB;
const bombs = {};

function compress(coding) {
  const make = { gzip: zlib.createGzip, deflate: zlib.createDeflate, br: zlib.createBrotliCompress }[coding];
  return new Promise((resolve, reject) => {
    const z = make(coding === 'br' ? { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } } : { level: 1 });
    const out = [];
    z.on('data', (c) => out.push(c)).on('end', () => resolve(Buffer.concat(out))).on('error', reject);
    let left = BOMB / MiB;
    const pump = () => {
      while (left > 0) {
        left -= 1;
        if (!z.write(CHUNK)) return z.once('drain', pump);
      }
      z.end();
    };
    pump();
  });
}

let server;
let base;
let liveSockets = 0;

/** Streams `total` bytes of 'a' without Content-Length, then closes, unless the client leaves. */
function endless(res, total) {
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent += CHUNK.length;
      if (!res.write(CHUNK)) return res.once('drain', pump);
    }
    res.destroy();
  };
  res.on('close', () => { sent = total; });
  pump();
}

const routes = {
  // A small gzip body that inflates far past the limit.
  '/gzip': (req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }); res.end(bombs.gzip); },
  '/deflate': (req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'deflate' }); res.end(bombs.deflate); },
  '/br': (req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'br' }); res.end(bombs.br); },
  // A gzip bomb as an error page.
  '/gzip-error': (req, res) => { res.writeHead(500, { 'content-type': 'text/html', 'content-encoding': 'gzip' }); res.end(bombs.gzip); },
  // Declares 560 MB and sends it slowly: the declaration alone is enough to refuse.
  '/declared': (req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(560 * 1000 * 1000) }); endless(res, 560 * MiB); },
  // No length, ended by closing the connection after 65 MiB.
  '/close': (req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); endless(res, 65 * MiB); },
  // A 64 MiB error page, chunked.
  '/error-page': (req, res) => { res.writeHead(502, { 'content-type': 'text/html' }); endless(res, 64 * MiB); },
  // An error page under the limit but far over what a message needs.
  // Never answers (until the test aborts).
  '/hang': () => {},
  '/big-error': (req, res) => { res.writeHead(400, { 'content-type': 'text/plain' }); res.end(`bad request ${'x'.repeat(3 * MiB)}`); },
};

before(async () => {
  for (const coding of ['gzip', 'deflate', 'br']) bombs[coding] = await compress(coding);
  server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const key = Object.keys(routes).find((k) => path.endsWith(`/snapshots${k}`));
    if (!key) { res.writeHead(404); return res.end('no such route'); }
    routes[key](req, res);
  });
  server.on('connection', (socket) => { liveSockets += 1; socket.on('close', () => { liveSockets -= 1; }); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

// The global fetch, wrapped so the package takes its fetch-shaped path (as in browsers).
const viaFetch = (url, init) => fetch(url, init);
const transports = [['node:http transport', {}], ['fetch', { fetch: viaFetch }]];

for (const [name, extra] of transports) {
  test(`${name}: bodies over maxResponseBytes fail at once as RESPONSE_TOO_LARGE, compressed or not`, async () => {
    const client = new SandboxClient({ apiUrl: base, maxRetries: 2, maxResponseBytes: LIMIT, ...extra });
    for (const id of ['gzip', 'deflate', 'br', 'gzip-error', 'declared', 'close', 'error-page']) {
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
