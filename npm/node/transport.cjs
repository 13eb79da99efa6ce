// The Node entry's default transport: a fetch-shaped function over node:http / node:https with
// keep-alive agents. Node's global fetch (undici) spends about twice as long per request as
// node:http on the same keep-alive connection (BENCHMARKS.md, per-call reference rows), and a
// snapshot client's life is short requests. It implements exactly what the wasm module uses of
// fetch: method, headers, a string or byte body, `signal`; a response with `status`,
// `headers.get()`, `text()` and `arrayBuffer()`. Compressed bodies are decoded. Redirects are
// not followed (the API does not redirect). Pass `fetch` to SandboxClient to use another one.
'use strict';

const http = require('node:http');
const https = require('node:https');
const zlib = require('node:zlib');

const AGENTS = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

function abortError(signal) {
  if (signal && signal.reason !== undefined) return signal.reason;
  return new DOMException('This operation was aborted', 'AbortError');
}

// A fetch failure looks like undici's: a TypeError whose cause is the socket error.
function fetchFailed(cause) {
  return new TypeError('fetch failed', { cause });
}

function decoder(encoding) {
  switch ((encoding || '').trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return undefined;
  }
}

class NodeHeaders {
  constructor(raw) {
    this.raw = raw;
  }
  get(name) {
    const value = this.raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : String(value);
  }
}

class NodeResponse {
  constructor(status, headers, body) {
    this.status = status;
    this.ok = status >= 200 && status < 300;
    this.headers = new NodeHeaders(headers);
    this.body = body;
  }
  async text() {
    return (await this.body).toString('utf8');
  }
  async arrayBuffer() {
    const buffer = await this.body;
    return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
  }
}

// Reads a response to the end, through the decompressor its Content-Encoding asks for. A body
// that stops early (connection lost, abort) rejects, like fetch's.
function readBody(res) {
  const inflate = decoder(res.headers['content-encoding']);
  const stream = inflate ? res.pipe(inflate) : res;
  return new Promise((resolve, reject) => {
    const chunks = [];
    let settled = false;
    const fail = (err) => {
      if (settled) return;
      settled = true;
      reject(fetchFailed(err));
    };
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks));
    });
    stream.on('error', fail);
    res.on('error', fail);
    res.on('close', () => {
      if (!res.complete) fail(new Error('the connection closed before the response body was complete'));
    });
  });
}

// Where each origin is, parsed once: a client sends every request to one or two origins, and
// parsing the URL per request was a measurable part of a short call.
const ORIGINS = new Map();

function locate(url) {
  const slash = url.indexOf('/', url.indexOf('//') + 2);
  const origin = slash === -1 ? url : url.slice(0, slash);
  let where = ORIGINS.get(origin);
  if (where === undefined) {
    const parsed = new URL(origin);
    const lib = parsed.protocol === 'https:' ? https : parsed.protocol === 'http:' ? http : undefined;
    if (!lib) throw new TypeError(`unsupported protocol ${parsed.protocol}`);
    where = { lib, hostname: parsed.hostname.replace(/^\[|\]$/g, ''), port: parsed.port, agent: AGENTS[parsed.protocol] };
    if (ORIGINS.size > 64) ORIGINS.clear();
    ORIGINS.set(origin, where);
  }
  return { where, path: slash === -1 ? '/' : url.slice(slash) };
}

function send(url, init, retryOnStaleSocket) {
  const { signal } = init;
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(abortError(signal));
      return;
    }
    let target;
    try {
      target = locate(url);
    } catch (err) {
      reject(err instanceof TypeError ? err : new TypeError(`invalid URL: ${url}`, { cause: err }));
      return;
    }
    const { where, path } = target;
    const method = (init.method || 'GET').toUpperCase();
    const headers = { 'accept-encoding': 'gzip, deflate, br', ...init.headers };
    let body = init.body;
    if (typeof body === 'string') body = Buffer.from(body, 'utf8');
    else if (body instanceof ArrayBuffer) body = Buffer.from(body);
    else if (ArrayBuffer.isView(body)) body = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (body !== undefined && body !== null) headers['content-length'] = String(body.length);
    else if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE') headers['content-length'] = '0';

    let responded = false;
    const onAbort = () => req.destroy(abortError(signal));
    const options = { hostname: where.hostname, port: where.port, path, method, headers, agent: where.agent };
    const req = where.lib.request(options, (res) => {
      responded = true;
      const bodyPromise = readBody(res);
      // Settled either way when the body is, so the abort listener never outlives the exchange.
      bodyPromise.then(cleanup, cleanup);
      bodyPromise.catch(() => {});
      resolve(new NodeResponse(res.statusCode, res.headers, signal ? rejectOnAbort(bodyPromise, signal) : bodyPromise));
    });
    function cleanup() {
      if (signal) signal.removeEventListener('abort', onAbort);
    }
    req.on('error', (err) => {
      cleanup();
      if (signal && signal.aborted) {
        reject(abortError(signal));
      } else if (!responded && retryOnStaleSocket && req.reusedSocket && err.code === 'ECONNRESET') {
        // The server closed an idle keep-alive connection just as this request was written to
        // it; the request never reached the server (Node's documented pattern), so send it again
        // once, on a fresh connection.
        send(url, init, false).then(resolve, reject);
      } else {
        reject(fetchFailed(err));
      }
    });
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    req.end(body === null ? undefined : body);
  });
}

function rejectOnAbort(bodyPromise, signal) {
  return bodyPromise.catch((err) => {
    throw signal.aborted ? abortError(signal) : err;
  });
}

/** A fetch-shaped transport over node:http / node:https with keep-alive. */
function nodeFetch(url, init = {}) {
  return send(String(url), init, true);
}

module.exports = { nodeFetch };
