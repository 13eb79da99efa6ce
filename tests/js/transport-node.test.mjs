// The Node transport (npm/node/transport.cjs, over node:http / node:https) against raw TCP servers
// that misbehave exactly as each test needs: stale keep-alive connections, bodies cut short,
// POSTs that must never be sent twice, compressed bodies, TLS, agents given by the caller, and a
// process that must exit when its work is done. Parsing HTTP is Node's job, not tested here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import zlib from 'node:zlib';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { SandboxClient, SandboxConnectionError } from 'tensorlake-snapshots';
import { ROOT } from './helpers/server.mjs';

const require = createRequire(import.meta.url);
const TRANSPORT = join(ROOT, 'pkg', 'node', 'transport.cjs');
const { nodeFetch } = require(TRANSPORT);
const direct = nodeFetch[Symbol.for('tensorlake-snapshots.exchange')];

/**
 * A TCP server that hands each request head (as text) to `answer(head, socket, info)`; info has
 * the socket's number and how many requests it carried. Returns the url and a log of requests.
 */
async function rawServer(answer) {
  const log = [];
  const sockets = new Set();
  let socketCount = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const socketId = ++socketCount;
    let uses = 0;
    let pending = '';
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = pending.slice(0, end);
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        pending = pending.slice(end + 4 + length);
        uses += 1;
        log.push({ head, socketId, uses });
        answer(head, socket, { socketId, uses });
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    log,
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(r);
    }),
  };
}

/** Runs `script` in a fresh Node process (in the repo root); its exit code, stdout and run time. */
async function runNode(script, env = {}) {
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise((r) => child.on('exit', r));
  return { code, out: out.trim(), ms: Date.now() - started };
}

const ok = (body, extra = '') => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
const SNAPSHOT = '{"id":"snap-1","status":"completed","created_at":1796032800000}';
const requestLine = (r) => r.head.split(' ').slice(0, 2).join(' ');

test('no file of the package opens sockets itself: node:net and node:tls are not required', () => {
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(c|m)?js$/.test(name)) files.push(path);
    }
  };
  walk(join(ROOT, 'pkg'));
  assert.ok(files.some((f) => f.endsWith('transport.cjs')), 'the transport is in the package');
  for (const file of files) {
    assert.doesNotMatch(readFileSync(file, 'utf8'), /(require\(|from |import\()\s*['"](node:)?(net|tls)['"]/, file);
  }
});

test('a pooled connection the server closed while idle is replaced, not reused', async () => {
  const { url, log, close } = await rawServer((head, socket) => {
    socket.write(ok('{}'));
    setTimeout(() => socket.end(), 10); // the server's idle timeout, much shortened
  });
  try {
    await (await nodeFetch(url)).text();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(await (await nodeFetch(url)).text(), '{}');
    assert.deepEqual(log.map((r) => [r.socketId, r.uses]), [[1, 1], [2, 1]], 'the second request went on a new connection, once');
  } finally {
    await close();
  }
});

test('a stale keep-alive connection: a GET reset before any answer is sent once more, on a new connection', async () => {
  // The server closes the reused connection just as the request arrives (Node's documented
  // keep-alive race). Only a request on a reused connection is resent, and only once.
  const { url, log, close } = await rawServer((head, socket, { uses, socketId }) => {
    if (uses === 2 || socketId >= 3) socket.destroy();
    else socket.write(ok(SNAPSHOT));
  });
  try {
    await (await nodeFetch(`${url}/a`)).text();
    assert.equal(await (await nodeFetch(`${url}/b`)).text(), SNAPSHOT);
    assert.deepEqual(log.map((r) => [requestLine(r), r.socketId, r.uses]), [['GET /a', 1, 1], ['GET /b', 1, 2], ['GET /b', 2, 1]]);
    // The resend on connection 2 succeeded. Now connection 2 resets on reuse, and the resend
    // (connection 3, new) resets too: it fails, and is not sent a third time.
    log.length = 0;
    const err = await direct(`${url}/c`, 'GET', {}, undefined, undefined, false).catch((e) => e);
    assert.ok(err instanceof TypeError && err.message === 'fetch failed' && err.cause?.code === 'ECONNRESET', String(err?.cause ?? err));
    assert.deepEqual(log.map((r) => [requestLine(r), r.socketId, r.uses]), [['GET /c', 2, 2], ['GET /c', 3, 1]]);
  } finally {
    await close();
  }
});

test('a POST is never sent twice: reset on a reused connection, it fails with the cause', async () => {
  const { url, log, close } = await rawServer((head, socket, { uses }) => {
    if (uses === 2) socket.destroy();
    else socket.write(ok('{}'));
  });
  try {
    await (await nodeFetch(`${url}/one`, { method: 'POST', body: '{}' })).text();
    const err = await nodeFetch(`${url}/two`, { method: 'POST', body: '{}' }).catch((e) => e);
    assert.ok(err instanceof TypeError && err.cause?.code === 'ECONNRESET', String(err?.cause ?? err));
    assert.deepEqual(log.map(requestLine), ['POST /one', 'POST /two'], 'sent once');
  } finally {
    await close();
  }
});

test('a POST does not go out on a connection idle for seconds; a GET still reuses its own', async () => {
  // A POST that meets a server's idle-timeout close cannot be sent again, so requests that
  // cannot be repeated use connections idle for under 2 s only; a GET can be resent, so it
  // keeps its pooled connection for longer.
  const { url, log, close } = await rawServer((head, socket) => socket.write(ok('{}')));
  try {
    await (await nodeFetch(`${url}/first`)).text();
    await (await nodeFetch(`${url}/soon`, { method: 'POST', body: '{}' })).text();
    await (await nodeFetch(`${url}/again`, { method: 'POST', body: '{}' })).text();
    await new Promise((r) => setTimeout(r, 2300));
    await (await nodeFetch(`${url}/late`, { method: 'POST', body: '{}' })).text();
    await (await nodeFetch(`${url}/get`)).text();
    assert.deepEqual(log.map((r) => [requestLine(r), r.socketId]), [
      ['GET /first', 1],
      ['POST /soon', 2],
      ['POST /again', 2],
      ['POST /late', 3],
      ['GET /get', 1],
    ]);
  } finally {
    await close();
  }
});

test('a body cut short fails with a cause, in both shapes the transport answers in', async () => {
  const { url, close } = await rawServer((head, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"snapshots":[');
    setTimeout(() => socket.destroy(), 20);
  });
  try {
    const viaResponse = await nodeFetch(url).then((r) => r.text()).catch((e) => e);
    assert.ok(viaResponse instanceof TypeError && viaResponse.cause instanceof Error, String(viaResponse));
    const viaParts = await direct(url, 'GET', {}, undefined, undefined, false).catch((e) => e);
    assert.ok(viaParts instanceof TypeError && viaParts.cause instanceof Error, String(viaParts));
  } finally {
    await close();
  }
});

test('a refused connection and a server that closes without answering fail with a cause', async () => {
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const refused = await nodeFetch(`http://127.0.0.1:${port}/`).catch((e) => e);
  assert.ok(refused instanceof TypeError && refused.cause?.code === 'ECONNREFUSED', String(refused?.cause));

  const { url, close } = await rawServer((head, socket) => socket.destroy());
  try {
    const err = await nodeFetch(url).catch((e) => e);
    assert.ok(err instanceof TypeError && err.cause?.code === 'ECONNRESET', String(err?.cause));
  } finally {
    await close();
  }
});

test('the shortcut js/exchange.js takes gives the same parts a fetch Response would', async () => {
  assert.equal(typeof direct, 'function');
  const { url, close } = await rawServer((head, socket) => {
    if (head.startsWith('GET /busy')) socket.write('HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nbusy');
    else if (head.startsWith('GET /bytes')) socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: 3\r\n\r\n\x00\x01\xff', 'latin1');
    else if (head.startsWith('GET /slow')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345');
    else socket.write(ok('{"id":"é"}'));
  });
  try {
    assert.deepEqual(await direct(`${url}/json`, 'GET', {}, undefined, undefined, false), [200, 'application/json', null, '{"id":"é"}']);
    assert.deepEqual(await direct(`${url}/busy`, 'GET', {}, undefined, undefined, true), [503, 'text/plain', '7', 'busy'], 'errors come as text, with Retry-After');
    const bytes = await direct(`${url}/bytes`, 'GET', {}, undefined, undefined, true);
    assert.ok(bytes[3] instanceof Uint8Array);
    assert.deepEqual([...bytes[3]], [0, 1, 255]);
    const controller = new AbortController();
    const reason = new Error('enough');
    const slow = direct(`${url}/slow`, 'GET', {}, undefined, controller.signal, false);
    setTimeout(() => controller.abort(reason), 30);
    await assert.rejects(slow, (e) => e === reason, 'an abort during the body rejects the one promise with the reason');
  } finally {
    await close();
  }
});

test('the shortcut writes the request head the ordinary path writes: Host with its port, path and query as given, IPv6', async () => {
  // The shortcut hands node:http a parsed origin and a header list instead of the URL and an
  // object (transport.cjs, `origin`); the bytes on the wire must not change.
  const sorted = (head) => head.split('\r\n').map((line, i) => (i === 0 ? line : line.toLowerCase())).sort();
  for (const host of ['127.0.0.1', '::1']) {
    const log = [];
    const sockets = [];
    const server = net.createServer((socket) => sockets.push(socket) && socket.on('data', (chunk) => {
      const head = chunk.toString('latin1').split('\r\n\r\n')[0];
      log.push(head);
      socket.write(ok('{}'));
    }));
    await new Promise((r) => server.listen(0, host, r));
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${server.address().port}/v1/namespaces/ns/snapshots?cursor=a%2Fb&limit=5`;
    try {
      const headers = () => ({ traceparent: '00-abc-def-01', 'X-Extra': 'x y' });
      assert.deepEqual((await direct(url, 'GET', headers(), undefined, undefined, false))[3], '{}');
      const res = await nodeFetch(url, { method: 'GET', headers: headers() });
      await res.text();
      await direct(url, 'POST', headers(), '{"a":1}', undefined, false);
      await (await nodeFetch(url, { method: 'POST', headers: headers(), body: '{"a":1}' })).text();
      assert.equal(log.length, 4);
      assert.deepEqual(sorted(log[0]), sorted(log[1]), `GET heads differ:\n${log[0]}\n---\n${log[1]}`);
      assert.deepEqual(sorted(log[2]), sorted(log[3]), `POST heads differ:\n${log[2]}\n---\n${log[3]}`);
      assert.ok(log[0].startsWith('GET /v1/namespaces/ns/snapshots?cursor=a%2Fb&limit=5 HTTP/1.1\r\n'), log[0]);
      assert.match(log[0], new RegExp(`\r\nHost: ${url.split('/')[2].replace(/[[\]]/g, '\\$&')}\r\n`));
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => server.close(r));
    }
  }
});

test('a path that is not plain ASCII (an apiUrl with a space or an accent) is sent percent-encoded, not refused', async () => {
  const log = [];
  const server = net.createServer((socket) => socket.on('data', (chunk) => {
    log.push(chunk.toString('latin1').split('\r\n')[0]);
    socket.write(ok('{}'));
  }));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${server.address().port}/my proxy/caf\u00e9/v1/snapshots`;
    assert.equal((await direct(url, 'GET', {}, undefined, undefined, false))[3], '{}');
    assert.equal(log[0], 'GET /my%20proxy/caf%C3%A9/v1/snapshots HTTP/1.1');
  } finally {
    server.close();
  }
});

test('stacked content codings are undone in reverse order; raw deflate is read; an unknown coding fails', async () => {
  const body = JSON.stringify({ hello: 'world' });
  const bodies = {
    '/stacked': ['gzip, br', zlib.brotliCompressSync(zlib.gzipSync(body))],
    '/raw-deflate': ['deflate', zlib.deflateRawSync(body)],
    '/unknown': ['zstd', Buffer.from('not really zstd')],
  };
  const { url, log, close } = await rawServer((head, socket) => {
    const [encoding, bytes] = bodies[head.split(' ')[1]];
    socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Encoding: ${encoding}\r\nContent-Length: ${bytes.length}\r\n\r\n`), bytes]));
  });
  try {
    assert.equal(await (await nodeFetch(`${url}/stacked`)).text(), body);
    assert.equal(await (await nodeFetch(`${url}/raw-deflate`)).text(), body);
    const err = await nodeFetch(`${url}/unknown`).then((r) => r.text()).catch((e) => e);
    assert.ok(err instanceof TypeError && /unsupported Content-Encoding "zstd"/.test(err.cause?.message), String(err?.cause));
    assert.match(log[0].head, /\r\nAccept-Encoding: gzip, deflate, br/i);
  } finally {
    await close();
  }
});

test('an abort while a compressed body is being decoded still rejects with the reason', async () => {
  // Large enough that decoding takes longer than the abort below, small on the wire.
  const bytes = zlib.gzipSync(Buffer.alloc(256 * 1024 * 1024, 'a'));
  const { url, close } = await rawServer((head, socket) => {
    socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${bytes.length}\r\n\r\n`), bytes]));
  });
  try {
    const controller = new AbortController();
    const reason = new Error('no longer wanted');
    const pending = direct(url, 'GET', {}, undefined, controller.signal, false);
    // 250 KB arrive over loopback in well under 50 ms; inflating 256 MB takes longer than that.
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(pending, (e) => e === reason);
  } finally {
    await close();
  }
});

test('a client given httpAgent sends every request through that agent; a bad one is refused up front', async () => {
  // What a proxy agent does (https-proxy-agent, for one) is decide where the connection goes:
  // this agent sends it to a second server, as a proxy would be, and counts.
  const target = await rawServer((head, socket) => socket.write(ok('{"via":"target"}')));
  const proxy = await rawServer((head, socket) => socket.write(ok(SNAPSHOT)));
  class ProxyAgent extends http.Agent {
    connections = 0;
    createConnection(options, callback) {
      this.connections += 1;
      return super.createConnection({ ...options, port: new URL(proxy.url).port }, callback);
    }
  }
  const agent = new ProxyAgent({ keepAlive: true });
  try {
    const client = SandboxClient.forLocalhost({ apiUrl: target.url, httpAgent: agent });
    assert.equal((await client.getSnapshot('snap-1')).snapshotId, 'snap-1');
    assert.equal((await client.getSnapshot('snap-1')).snapshotId, 'snap-1');
    assert.equal(agent.connections, 1, 'one kept-alive connection of the given agent');
    assert.equal(target.log.length, 0);
    assert.equal(proxy.log.length, 2);

    for (const bad of [{}, 'http://proxy:3128', { addRequest: 1 }]) {
      assert.throws(() => SandboxClient.forLocalhost({ apiUrl: target.url, httpAgent: bad }), (e) => e instanceof TypeError && /^httpAgent: must be an http\.Agent/.test(e.message));
    }
    assert.throws(() => SandboxClient.forLocalhost({ apiUrl: target.url, httpAgent: agent, fetch }), (e) => e instanceof TypeError && /^httpAgent: give either fetch or httpAgent/.test(e.message));
  } finally {
    agent.destroy();
    await target.close();
    await proxy.close();
  }
});

test('httpAgent is refused, naming the alternative, where the entry has no node:http transport (browsers)', async () => {
  // The ./web entry is what browsers load; in Node it has no transport through node:http either.
  const web = await import('tensorlake-snapshots/web');
  web.initSync({ module: readFileSync(join(ROOT, 'pkg', 'tensorlake_snapshots_bg.wasm')) });
  assert.throws(() => web.SandboxClient.forLocalhost({ httpAgent: new http.Agent() }), (e) => e instanceof TypeError && /^httpAgent: works only with the package's Node entry/.test(e.message) && /pass fetch/.test(e.message));
});

test('https: the certificate is verified, and a trusted one works', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ secure: true, path: req.url }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://localhost:${server.address().port}`;
  try {
    const err = await nodeFetch(`${url}/x`).catch((e) => e);
    assert.ok(err instanceof TypeError && /self[- ]signed/i.test(err.cause?.message ?? ''), `untrusted certificate refused: ${err?.cause?.message}`);
    // Trusted through NODE_EXTRA_CA_CERTS, which Node reads only at start: a child process.
    const script = `require(${JSON.stringify(TRANSPORT)}).nodeFetch(${JSON.stringify(`${url}/y`)}).then((r) => r.text()).then((t) => console.log(t), (e) => { console.log('ERR', e.cause?.message); process.exitCode = 1; });`;
    const { out } = await runNode(script, { NODE_EXTRA_CA_CERTS: cert });
    assert.deepEqual(JSON.parse(out), { secure: true, path: '/y' });
  } finally {
    server.closeAllConnections?.();
    await new Promise((r) => server.close(r));
  }
});

test('a Node script using the client exits as soon as its work is done', async () => {
  const { url, close } = await rawServer((head, socket) => socket.write(ok(SNAPSHOT)));
  try {
    const script = `const { SandboxClient } = require('tensorlake-snapshots');
      SandboxClient.forLocalhost({ apiUrl: ${JSON.stringify(url)}, requestTimeout: 300 }).getSnapshot('snap-1').then((s) => console.log(s.snapshotId));`;
    const { code, out, ms } = await runNode(script);
    assert.equal(code, 0);
    assert.equal(out, 'snap-1');
    assert.ok(ms < 5000, 'no request timer or pooled connection held the process open');
  } finally {
    await close();
  }
});
