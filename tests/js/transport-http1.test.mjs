// The Node transport's HTTP/1.1 framing and connection pool, against raw TCP servers that write
// exactly the bytes each test needs: chunked bodies, bodies split at every byte, informational
// responses, bodies delimited by close, malformed responses, connection reuse and TLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import https from 'node:https';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from './helpers/server.mjs';

const require = createRequire(import.meta.url);
const TRANSPORT = join(ROOT, 'pkg', 'node', 'transport.cjs');
const { nodeFetch } = require(TRANSPORT);

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
        const body = pending.slice(end + 4, end + 4 + length);
        pending = pending.slice(end + 4 + length);
        uses += 1;
        log.push({ head, body, socketId, uses });
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

test('a request is one well-formed HTTP/1.1 message with the caller\'s headers', async () => {
  const { url, log, close } = await rawServer((head, socket) => socket.write(ok('{}')));
  try {
    await (await nodeFetch(`${url}/v1/x?y=1#frag`, { method: 'post', body: 'héllo', headers: { 'X-Trace': 'abc', 'content-type': 'application/json' } })).text();
    const [{ head, body }] = log;
    const lines = head.split('\r\n');
    assert.equal(lines[0], 'POST /v1/x?y=1 HTTP/1.1', 'the fragment is not sent');
    assert.ok(lines.includes(`Host: ${new URL(url).host}`));
    assert.ok(lines.includes('X-Trace: abc'));
    assert.ok(lines.includes('content-type: application/json'));
    assert.ok(lines.includes(`Content-Length: ${Buffer.byteLength('héllo')}`));
    assert.equal(body, Buffer.from('héllo').toString('latin1'), 'the body is UTF-8');
  } finally {
    await close();
  }
});

test('header values that could split the request, and bad names or methods, are refused before sending', async () => {
  const { url, log, close } = await rawServer((head, socket) => socket.write(ok('{}')));
  try {
    await assert.rejects(nodeFetch(url, { headers: { Authorization: 'Bearer x\r\nX-Evil: 1' } }), (e) => e instanceof TypeError && /invalid value for header Authorization/.test(e.message) && !/Bearer/.test(e.message));
    await assert.rejects(nodeFetch(url, { headers: { 'bad name': 'v' } }), /invalid header name/);
    await assert.rejects(nodeFetch(url, { method: 'GET /x' }), /invalid method/);
    await assert.rejects(nodeFetch('ftp://127.0.0.1/'), /unsupported protocol/);
    assert.equal(log.length, 0, 'nothing was sent');
  } finally {
    await close();
  }
});

test('chunked bodies, with extensions and trailers, are reassembled', async () => {
  const { url, close } = await rawServer((head, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{"a":\r\n3\r\n123\r\nA\r\n,"b":"xyz"\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n');
  });
  try {
    const res = await nodeFetch(url);
    assert.deepEqual(JSON.parse(await res.text()), { a: 123, b: 'xyz' });
    // The connection is reused after a chunked response (the trailer did not confuse it).
    assert.deepEqual(JSON.parse(await (await nodeFetch(url)).text()), { a: 123, b: 'xyz' });
  } finally {
    await close();
  }
});

test('a response split at every byte parses the same as one in one piece', async () => {
  const body = JSON.stringify({ id: 'snap-1', text: 'é'.repeat(50) });
  const chunked = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const { url, close } = await rawServer(async (head, socket) => {
    const bytes = Buffer.from(head.includes('/chunked') ? chunked : ok(body, 'X-A: 1\r\n'));
    socket.setNoDelay(true);
    for (let i = 0; i < bytes.length; i++) {
      socket.write(bytes.subarray(i, i + 1));
      await new Promise((r) => setImmediate(r));
    }
  });
  try {
    for (const path of ['/length', '/chunked']) {
      const res = await nodeFetch(url + path);
      assert.equal(res.headers.get('x-a'), '1');
      assert.equal(await res.text(), body, path);
    }
  } finally {
    await close();
  }
});

test('informational responses are skipped; HEAD, 204 and 304 have no body', async () => {
  const { url, close } = await rawServer((head, socket) => {
    if (head.startsWith('GET /early')) socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n' + ok('{"x":1}'));
    else if (head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n');
    else if (head.startsWith('GET /204')) socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    else socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n');
  });
  try {
    const early = await nodeFetch(`${url}/early`);
    assert.equal(early.status, 200);
    assert.equal(await early.text(), '{"x":1}');
    const headRes = await nodeFetch(url, { method: 'HEAD' });
    assert.equal(headRes.headers.get('content-length'), '1234');
    assert.equal(await headRes.text(), '');
    assert.equal(await (await nodeFetch(`${url}/204`)).text(), '');
    const notModified = await nodeFetch(`${url}/304`);
    assert.equal(notModified.status, 304);
    assert.equal(await notModified.text(), '');
    assert.equal(await (await nodeFetch(`${url}/early`)).text(), '{"x":1}', 'the connection is still in step');
  } finally {
    await close();
  }
});

test('a body without length is read to the close; Connection: close is honoured', async () => {
  const { url, log, close } = await rawServer((head, socket) => {
    if (head.startsWith('GET /eof')) socket.end('HTTP/1.1 200 OK\r\n\r\n{"until":"close"}');
    else socket.write(ok('{"c":1}', 'Connection: close\r\n'));
  });
  try {
    assert.equal(await (await nodeFetch(`${url}/eof`)).text(), '{"until":"close"}');
    assert.equal(await (await nodeFetch(`${url}/c`)).text(), '{"c":1}');
    assert.equal(await (await nodeFetch(`${url}/c`)).text(), '{"c":1}');
    assert.deepEqual(log.map((r) => r.uses), [1, 1, 1], 'no connection was reused');
  } finally {
    await close();
  }
});

test('sequential requests share one connection; concurrent ones get their own', async () => {
  const { url, log, close } = await rawServer((head, socket) => setTimeout(() => socket.write(ok('{}')), 5));
  try {
    for (let i = 0; i < 5; i++) await (await nodeFetch(`${url}/seq`)).text();
    const sequential = new Set(log.map((r) => r.socketId));
    assert.equal(sequential.size, 1, 'keep-alive: one connection for sequential requests');
    log.length = 0;
    await Promise.all(Array.from({ length: 4 }, async () => (await nodeFetch(`${url}/par`)).text()));
    assert.equal(new Set(log.map((r) => r.socketId)).size, 4, 'one exchange per connection at a time');
  } finally {
    await close();
  }
});

test('malformed responses fail as fetch does, and the connection is not reused', async () => {
  const answers = {
    '/status': 'HTTP/1.1 abc\r\n\r\n',
    '/header': 'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
    '/length': 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello',
    '/chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    '/huge': `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`,
    '/name': 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}',
  };
  const { url, log, close } = await rawServer((head, socket) => {
    const path = head.split(' ')[1];
    socket.write(answers[path] ?? ok('{}'));
  });
  try {
    for (const path of Object.keys(answers)) {
      const err = await nodeFetch(url + path).then((r) => r.text()).catch((e) => e);
      assert.ok(err instanceof TypeError && err.message === 'fetch failed', `${path}: ${err}`);
      assert.match(err.cause.message, /invalid HTTP response/, path);
    }
    log.length = 0;
    assert.equal(await (await nodeFetch(`${url}/fine`)).text(), '{}');
    assert.equal(log[0].uses, 1, 'a new connection after a malformed response');
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
    assert.ok(err instanceof TypeError && /closed before a response/.test(err.cause.message), String(err?.cause));
  } finally {
    await close();
  }
});

test('idle pooled connections do not keep the process alive', async () => {
  const { url, close } = await rawServer((head, socket) => socket.write(ok('{"done":true}')));
  try {
    const script = `const { nodeFetch } = require(${JSON.stringify(TRANSPORT)});
      nodeFetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => console.log(t));`;
    const { code, out, ms } = await runNode(script);
    assert.equal(code, 0);
    assert.equal(out, '{"done":true}');
    assert.ok(ms < 5000, 'exited without waiting for the idle connection');
  } finally {
    await close();
  }
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

test('the shortcut js/exchange.js takes gives the same parts a fetch Response would', async () => {
  const direct = nodeFetch[Symbol.for('tensorlake-snapshots.exchange')];
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

test('a Node script using the client exits as soon as its work is done', async () => {
  const { url, close } = await rawServer((head, socket) => socket.write(ok('{"id":"snap-1","status":"completed","created_at":1796032800000}')));
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

test('request targets are the ones fetch would send: query without a path, fragments, non-ASCII, dot segments', async () => {
  const { url, log, close } = await rawServer((head, socket) => socket.write(ok('{}')));
  try {
    const cases = [
      [`${url}?a=1`, '/?a=1'],
      [`${url}?next=/x/y`, '/?next=/x/y'],
      [`${url}#/frag`, '/'],
      [`${url}/caf\u00e9?q=\u00e9`, '/caf%C3%A9?q=%C3%A9'],
      [`${url}/a/../b/./c`, '/b/c'],
      // Characters whose low byte is CR, LF or space must not split the request when written.
      [`${url}/a\u0120HTTP/1.1\u010d\u010aX-Injected:\u0120yes`, '/a%C4%A0HTTP/1.1%C4%8D%C4%8AX-Injected:%C4%A0yes'],
    ];
    for (const [target] of cases) await (await nodeFetch(target)).text();
    assert.deepEqual(log.map((r) => r.head.split('\r\n')[0]), cases.map(([, path]) => `GET ${path} HTTP/1.1`));
    assert.ok(log.every((r) => !/X-Injected/i.test(r.head.split('\r\n').slice(1).join('\n'))), 'no injected header');
    assert.equal(new Set(log.map((r) => r.socketId)).size, 1, 'all one origin, one pooled connection');
  } finally {
    await close();
  }
});

test('stacked content codings are undone in reverse order; an unknown one fails', async () => {
  const body = JSON.stringify({ hello: 'world' });
  const bodies = {
    '/stacked': ['gzip, br', zlib.brotliCompressSync(zlib.gzipSync(body))],
    '/raw-deflate': ['deflate', zlib.deflateRawSync(body)],
    '/unknown': ['zstd', Buffer.from('not really zstd')],
  };
  const { url, close } = await rawServer((head, socket) => {
    const [encoding, bytes] = bodies[head.split(' ')[1]];
    socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Encoding: ${encoding}\r\nContent-Length: ${bytes.length}\r\n\r\n`), bytes]));
  });
  try {
    assert.equal(await (await nodeFetch(`${url}/stacked`)).text(), body);
    assert.equal(await (await nodeFetch(`${url}/raw-deflate`)).text(), body);
    const err = await nodeFetch(`${url}/unknown`).then((r) => r.text()).catch((e) => e);
    assert.ok(err instanceof TypeError && /unsupported Content-Encoding "zstd"/.test(err.cause?.message), String(err?.cause));
  } finally {
    await close();
  }
});

test('bytes after a bodiless response mean the connection is not reused', async () => {
  const { url, log, close } = await rawServer((head, socket) => {
    if (head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    else socket.write('HTTP/1.1 204 No Content\r\n\r\nstray');
  });
  try {
    for (let i = 0; i < 2; i++) {
      assert.equal(await (await nodeFetch(url, { method: 'HEAD' })).text(), '');
      assert.equal(await (await nodeFetch(`${url}/204`)).text(), '');
    }
    assert.deepEqual(log.map((r) => r.uses), [1, 1, 1, 1], 'a new connection after each response with stray bytes');
  } finally {
    await close();
  }
});

test('a connection in use when the origin cache is reset is closed when released, not left idle', async () => {
  let closed = false;
  const { url, close } = await rawServer((head, socket) => {
    socket.on('close', () => {
      closed = true;
    });
    setTimeout(() => socket.write(ok('{}')), 100);
  });
  try {
    const pending = nodeFetch(url).then((r) => r.text());
    // 64 other origins (a refused port; only the cache matters) push this one out of it.
    const host = 'localhost';
    const variants = Array.from({ length: 64 }, (_, i) => [...host].map((c, j) => ((i >> j) & 1 ? c.toUpperCase() : c)).join(''));
    await Promise.all(variants.map((h) => nodeFetch(`http://${h}:1/`).catch(() => {})));
    assert.equal(await pending, '{}');
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(closed, 'the connection was closed rather than pooled under a forgotten origin');
  } finally {
    await close();
  }
});

test('a POST does not go out on a connection idle for seconds; a GET still reuses it', async () => {
  // A POST that meets a server's idle-timeout close cannot be sent again, so it avoids the
  // connections most likely to be closing; a GET can be resent, so it keeps the saving.
  const { url, log, close } = await rawServer((head, socket) => socket.write(ok('{}')));
  try {
    await (await nodeFetch(`${url}/first`)).text();
    await (await nodeFetch(`${url}/soon`, { method: 'POST', body: '{}' })).text();
    await new Promise((r) => setTimeout(r, 2200));
    await (await nodeFetch(`${url}/late`, { method: 'POST', body: '{}' })).text();
    await (await nodeFetch(`${url}/get`)).text();
    assert.deepEqual(log.map((r) => [r.head.split(' ').slice(0, 2).join(' '), r.socketId]), [
      ['GET /first', 1],
      ['POST /soon', 1],
      ['POST /late', 2],
      ['GET /get', 2],
    ]);
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
    const direct = nodeFetch[Symbol.for('tensorlake-snapshots.exchange')];
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
