// The Node entry's default transport (npm/node/transport.cjs, over node:http) against node:http servers: compressed
// bodies, aborts, bodies cut short, and the stale keep-alive connection race.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { SandboxClient, SandboxConnectionError } from 'tensorlake-snapshots';
import { ROOT } from './helpers/server.mjs';

const require = createRequire(import.meta.url);
const { nodeFetch } = require(join(ROOT, 'pkg', 'node', 'transport.cjs'));

async function serve(handler) {
  const server = http.createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }) };
}

const SNAPSHOT = { id: 'snap-1', status: 'completed', created_at: 1796032800000 };

test('Node clients use the package transport by default, and a fetch option overrides it', async () => {
  const seen = [];
  const { url, close } = await serve((req, res) => {
    seen.push(req.headers);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(SNAPSHOT));
  });
  try {
    await SandboxClient.forLocalhost({ apiUrl: url }).getSnapshot('snap-1');
    assert.equal(seen[0]['accept-encoding'], 'gzip, deflate, br', 'sent by the package transport');
    assert.equal(seen[0].connection, 'keep-alive');
    let custom = 0;
    await SandboxClient.forLocalhost({ apiUrl: url, fetch: (u, i) => { custom += 1; return fetch(u, i); } }).getSnapshot('snap-1');
    assert.equal(custom, 1);
  } finally {
    await close();
  }
});

test('gzip, deflate and brotli bodies are decoded', async () => {
  const body = JSON.stringify({ snapshots: Array.from({ length: 500 }, (_, i) => ({ ...SNAPSHOT, id: `snap-${i}` })) });
  const encoders = { gzip: zlib.gzipSync, deflate: zlib.deflateSync, br: zlib.brotliCompressSync };
  const { url, close } = await serve((req, res) => {
    const encoding = new URL(req.url, 'http://x').searchParams.get('e') ?? 'gzip';
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-encoding', encoding);
    res.end(encoders[encoding](body));
  });
  try {
    for (const encoding of Object.keys(encoders)) {
      const res = await nodeFetch(`${url}/?e=${encoding}`);
      assert.equal(res.status, 200);
      assert.equal(JSON.parse(await res.text()).snapshots.length, 500, encoding);
    }
    const client = SandboxClient.forLocalhost({ apiUrl: url });
    assert.equal((await client.listSnapshots()).length, 500);
  } finally {
    await close();
  }
});

test('bytes, headers and statuses come through as fetch would give them', async () => {
  const { url, close } = await serve((req, res) => {
    let received = [];
    req.on('data', (c) => received.push(c));
    req.on('end', () => {
      res.statusCode = 207;
      res.setHeader('x-echo-length', String(Buffer.concat(received).length));
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end(Buffer.from([0, 1, 254, 255]));
    });
  });
  try {
    const res = await nodeFetch(url, { method: 'PUT', body: new Uint8Array([9, 9, 9]), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(res.status, 207);
    assert.equal(res.headers.get('X-Echo-Length'), '3');
    assert.equal(res.headers.get('set-cookie'), 'a=1, b=2');
    assert.equal(res.headers.get('missing'), null);
    assert.deepEqual([...new Uint8Array(await res.arrayBuffer())], [0, 1, 254, 255]);
  } finally {
    await close();
  }
});

test('an abort before or during the exchange rejects with the reason and frees the socket', async () => {
  const { url, close } = await serve((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"snapshots":[');
    // Never finishes: only an abort ends this exchange.
  });
  try {
    const reason = new Error('stop');
    await assert.rejects(nodeFetch(url, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    const controller = new AbortController();
    const res = await nodeFetch(url, { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(res.text(), (e) => e === reason);
  } finally {
    await close();
  }
});

test('a body cut short by the server is a connection error, and reads are retried', async () => {
  let calls = 0;
  let cut = 0;
  const { url, close } = await serve((req, res) => {
    calls += 1;
    const body = JSON.stringify(SNAPSHOT);
    if (calls <= cut) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.write(body.slice(0, 10));
      setTimeout(() => res.socket.destroy(), 20);
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(body);
  });
  try {
    cut = 1;
    const res = await nodeFetch(url);
    await assert.rejects(res.text(), (e) => e instanceof TypeError && /fetch failed/.test(e.message) && e.cause instanceof Error);

    calls = 0;
    cut = 1;
    const client = SandboxClient.forLocalhost({ apiUrl: url });
    assert.equal((await client.getSnapshot('snap-1')).snapshotId, 'snap-1');
    assert.equal(calls, 2, 'the cut response was retried once');

    calls = 0;
    cut = 5;
    const strict = SandboxClient.forLocalhost({ apiUrl: url, maxRetries: 0 });
    const err = await strict.getSnapshot('snap-1').catch((e) => e);
    assert.ok(err instanceof SandboxConnectionError, String(err));
    assert.match(err.message, /fetch failed/);
  } finally {
    await close();
  }
});

test('a request reset on a reused keep-alive connection before any answer: a GET is sent again once, a POST is not', async () => {
  // Node's documented race: the server closes an idle keep-alive connection just as the client
  // reuses it. Simulated by resetting the second request that arrives on a reused connection.
  // A GET is safe to repeat; a POST the server may have acted on is not, and is left to the
  // client's own policy (for a snapshot: look for one created since the call began).
  const sockets = new Map();
  const log = [];
  const { url, close } = await serve((req, res) => {
    const socket = req.socket;
    const uses = (sockets.get(socket) ?? 0) + 1;
    sockets.set(socket, uses);
    log.push({ method: req.method, uses });
    if (uses === 2) {
      socket.destroy();
      return;
    }
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'POST') res.end(JSON.stringify({ snapshot_id: `snap-${log.length}`, status: 'in_progress' }));
      else if (req.url.includes('/snapshots?')) res.end(JSON.stringify({ snapshots: [] }));
      else res.end(JSON.stringify({ ...SNAPSHOT, id: 'snap-1' }));
    });
  });
  try {
    const client = SandboxClient.forLocalhost({ apiUrl: url });
    await client.getSnapshot('snap-1');
    assert.equal((await client.getSnapshot('snap-1')).snapshotId, 'snap-1');
    assert.deepEqual(log, [
      { method: 'GET', uses: 1 },
      { method: 'GET', uses: 2 },
      { method: 'GET', uses: 1 },
    ], 'reset on the reused connection, then sent once more on a fresh one');

    log.length = 0;
    await client.snapshot('sbx-1'); // POSTs have connections of their own: a new one, answered
    await client.snapshot('sbx-1'); // its second use: reset
    assert.fail('the reset POST should have failed');
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    assert.ok(err instanceof SandboxConnectionError, String(err));
    assert.deepEqual(log.filter((r) => r.method === 'POST'), [{ method: 'POST', uses: 1 }, { method: 'POST', uses: 2 }], 'the reset POST was sent once, never again');
    assert.equal(err.outcomeUnknown, true, 'no snapshot of it was found, so its outcome is unknown');
  } finally {
    await close();
  }
});
