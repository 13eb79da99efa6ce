// A hostile API server on loopback, for the client's tests: compression bombs, bodies that never
// end or end by a close, huge error pages, a request that is never answered. Optionally it also
// serves a directory (the built package and a page), so a browser can call it same-origin.
import http from 'node:http';
import zlib from 'node:zlib';
import { readFile } from 'node:fs/promises';
import { join, normalize, extname } from 'node:path';

const MiB = 1024 * 1024;
const CHUNK = Buffer.alloc(MiB, 0x61); // 'aaaa…': the worst case for compression ratios
const BOMB_BYTES = 256 * MiB;
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

/** `BOMB_BYTES` of 'a', compressed with `coding` (gzip, deflate or br): about 250 KB. */
function bomb(coding) {
  const make = { gzip: zlib.createGzip, deflate: zlib.createDeflate, br: zlib.createBrotliCompress }[coding];
  return new Promise((resolve, reject) => {
    const z = make(coding === 'br' ? { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } } : { level: 1 });
    const out = [];
    z.on('data', (c) => out.push(c)).on('end', () => resolve(Buffer.concat(out))).on('error', reject);
    let left = BOMB_BYTES / MiB;
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

/** Streams `total` bytes of 'a' without Content-Length, then drops the connection. */
function endless(res, total) {
  let sent = 0;
  res.on('close', () => { sent = total; });
  const pump = () => {
    while (sent < total) {
      sent += CHUNK.length;
      if (!res.write(CHUNK)) return res.once('drain', pump);
    }
    res.destroy();
  };
  pump();
}

/**
 * Starts the server. Snapshot ids name the behaviour: GET /v1/namespaces/default/snapshots/{id}
 * with id one of gzip, deflate, br, gzip-error, declared, close, error-page, big-error, hang.
 * @param {{ staticDir?: string }} [options]
 */
export async function startHostileServer({ staticDir } = {}) {
  const bombs = {};
  for (const coding of ['gzip', 'deflate', 'br']) bombs[coding] = await bomb(coding);
  const encoded = (status, coding) => (req, res) => {
    res.writeHead(status, { 'content-type': status < 300 ? 'application/json' : 'text/html', 'content-encoding': coding });
    res.end(bombs[coding]);
  };
  const routes = {
    gzip: encoded(200, 'gzip'),
    deflate: encoded(200, 'deflate'),
    br: encoded(200, 'br'),
    'gzip-error': encoded(500, 'gzip'),
    // Declares 560 MB and trickles it: the declaration alone is enough to refuse.
    declared: (req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(560e6) }); endless(res, 560 * MiB); },
    // No length, 65 MiB, then the connection is dropped.
    close: (req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); endless(res, 65 * MiB); },
    'error-page': (req, res) => { res.writeHead(502, { 'content-type': 'text/html' }); endless(res, 64 * MiB); },
    'big-error': (req, res) => { res.writeHead(400, { 'content-type': 'text/plain' }); res.end(`bad request ${'x'.repeat(3 * MiB)}`); },
    hang: () => {},
  };
  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const match = /\/snapshots\/([^/]+)$/.exec(path);
    if (match && routes[match[1]]) return routes[match[1]](req, res);
    if (staticDir && req.method === 'GET') {
      const file = normalize(join(staticDir, path === '/' ? 'index.html' : path));
      if (file.startsWith(staticDir)) {
        try {
          const body = await readFile(file);
          res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' });
          return res.end(body);
        } catch { /* falls through to 404 */ }
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('no such route');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** The ids whose answer is over a 4 MiB limit. */
    oversized: ['gzip', 'deflate', 'br', 'gzip-error', 'declared', 'close', 'error-page'],
    stop: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
