// The Node entry's default transport: Node's own HTTP client (`node:http` / `node:https` with
// keep-alive agents, as the AWS SDK v3 and Stripe use it) behind the part of fetch the wasm module
// uses: method, headers, a string or byte body, `signal`; `status`, `ok`, `headers.get()`,
// `text()`, `arrayBuffer()`. Node parses HTTP. Not Node's `fetch`: undici costs about 1.7 times
// node:http per short call (BENCHMARKS.md, per-call reference rows). Failures look like fetch's
// (a TypeError('fetch failed') with Node's error as `cause`, or the signal's reason); gzip,
// deflate and br bodies are decoded; redirects are not followed (the API does not redirect).
'use strict';

const http = require('node:http');
const zlib = require('node:zlib');
const { urlToHttpOptions } = require('node:url');

// Idle connections close after 15 s (sooner if the server's `Keep-Alive` says so). A request that
// must not be sent twice gets a connection idle for under 2 s, or a new one: servers close idle
// connections after seconds to minutes, and a request written just as that happens can neither be
// known to have arrived nor be sent again. Those requests have agents of their own.
const [IDLE_CLOSE_MS, FRESH_FOR_MS] = [15_000, 2_000];
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
// js/exchange.js's shortcut (same symbol there): the parts it would read from a Response, in one
// promise, without the Response, its headers object and the text() promise.
const DIRECT = Symbol.for('tensorlake-snapshots.exchange');
const [RESPONSE, TEXT, BYTES] = [0, 1, 2];

// [idempotent, fresh] agents per protocol, made on first use (node:https loads TLS).
let https;
const client = (secure) => (secure ? (https ??= require('node:https')) : http);
const AGENTS = new Map();
function defaultAgent(secure, idempotent) {
  const { Agent } = client(secure);
  if (!AGENTS.has(secure)) AGENTS.set(secure, [IDLE_CLOSE_MS, FRESH_FOR_MS].map((timeout) => new Agent({ keepAlive: true, timeout })));
  return AGENTS.get(secure)[idempotent ? 0 : 1];
}

const abortReason = (signal) => (signal.reason !== undefined ? signal.reason : new DOMException('This operation was aborted', 'AbortError'));
// A fetch failure looks like undici's: a TypeError whose cause is what went wrong.
const fetchFailed = (cause) => new TypeError('fetch failed', { cause });
function header(headers, name) {
  const value = headers[String(name).toLowerCase()];
  return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
}

// "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
const DECODERS = { gzip: [zlib.gunzip], 'x-gzip': [zlib.gunzip], deflate: [zlib.inflate, zlib.inflateRaw], br: [zlib.brotliDecompress] };
// `maxOutputLength` stops a decompression bomb inside zlib, before the output exists.
const TOO_BIG = 'ERR_BUFFER_TOO_LARGE';
const inflate = ([first, ...rest], buffer, options) => new Promise((resolve, reject) => first(buffer, options, (err, out) => (
  err && err.code !== TOO_BIG && rest.length > 0 ? inflate(rest, buffer, options).then(resolve, reject) : err ? reject(err) : resolve(out))));

// What js/exchange.js reads as "the body passed maxResponseBytes".
function tooLarge(maxBytes) {
  const error = new RangeError(`the response is larger than maxResponseBytes (${maxBytes} bytes)`);
  error.name = 'ResponseTooLargeError';
  return error;
}

// Undoes a Content-Encoding list ("gzip, br" means gzip first, then br), last coding first. An
// unknown coding is an error: its bytes would otherwise pass for the body.
async function decode(encoding, buffer, maxBytes) {
  const options = maxBytes ? { maxOutputLength: maxBytes } : {};
  let body = buffer;
  for (const coding of (encoding || '').split(',').map((c) => c.trim().toLowerCase()).reverse()) {
    if (coding === '' || coding === 'identity') continue;
    if (!Object.prototype.hasOwnProperty.call(DECODERS, coding)) throw new Error(`unsupported Content-Encoding ${JSON.stringify(coding)}`);
    if (body.length > 0) {
      body = await inflate(DECODERS[coding], body, options).catch((err) => {
        throw err.code === TOO_BIG ? tooLarge(maxBytes) : err;
      });
    }
  }
  return body;
}

// What the wasm module reads of a fetch Response; `body` is a promise of the decoded bytes.
const response = (res, body) => ({
  status: res.statusCode,
  ok: res.statusCode >= 200 && res.statusCode < 300,
  headers: { get: (name) => header(res.headers, name) },
  text: () => body.then((b) => b.toString('utf8')),
  arrayBuffer: () => body.then((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
});

// `owned`: `given` is a plain object of strings made for this request alone (js/exchange.js's
// shortcut), completed in place instead of copied.
function requestHeaders(given, method, body, owned) {
  let headers = given;
  if (!owned) {
    headers = {};
    const pairs = given == null ? [] : Array.isArray(given) ? given : typeof given.entries === 'function' ? given.entries() : Object.entries(given);
    for (const [name, value] of pairs) headers[name] = String(value);
  }
  // Ours, set last: node:http sets headers by case-insensitive name, so these replace the caller's.
  headers['Accept-Encoding'] = 'gzip, deflate, br';
  if (body !== undefined) headers['Content-Length'] = String(body.length);
  else if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE') headers['Content-Length'] = '0';
  return headers;
}

// The URLs of one client share an origin, so it is parsed once: scheme, host and port as
// node:http takes them, the Host header it would write, and the length of the origin's text (the
// path and query follow it). Only a plain origin (no user info; the URL goes on with '/') is kept,
// and only a few: anything else goes the ordinary way.
const ORIGINS = new Map();
const PLAIN_PATH = /^[\x21-\x7e]*$/;
function origin(url) {
  const slash = url.indexOf('/', url.indexOf('//') + 2);
  if (slash < 0) return undefined;
  const key = url.slice(0, slash);
  let found = ORIGINS.get(key);
  if (found === undefined && ORIGINS.size < 8) {
    let parsed;
    try {
      parsed = new URL(key);
    } catch {
      return undefined;
    }
    if (parsed.origin !== key || parsed.username !== '' || parsed.password !== '') return undefined;
    const { protocol, hostname, port } = urlToHttpOptions(parsed);
    found = { protocol, hostname, port, hostHeader: parsed.host, length: key.length };
    ORIGINS.set(key, found);
  }
  return found;
}

function bodyBytes(body) {
  if (body == null) return undefined;
  if (typeof body === 'string' || body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('the request body must be a string, an ArrayBuffer or a typed array');
}

// Follows a signal with a listener of its own (the plain fetch shape).
const follow = (signal, callback) => {
  signal.addEventListener('abort', callback);
  return () => signal.removeEventListener('abort', callback);
};

// One exchange. RESPONSE resolves to a fetch Response once the head is in; TEXT and BYTES resolve
// to js/exchange.js's parts once the whole body is in. For TEXT and BYTES, `timeoutMs` bounds the
// exchange with a TimeoutError, `maxBytes` bounds the body (on the wire and decoded) with a
// ResponseTooLargeError, `onAbort` is js/exchange.js's shared follower of the signal, and
// `shape(error, signal)` is what a failure rejects with (js/exchange.js's [kind, error], made
// here rather than by a `.catch` that would cost every request a promise).
function send(url, init, agent, mode, mayResend, timeoutMs, maxBytes, onAbort = follow, shape = undefined) {
  const { signal } = init;
  return new Promise((resolve, rejectRaw) => {
    const reject = shape === undefined ? rejectRaw : (error) => rejectRaw(shape(error, signal));
    if (signal && signal.aborted) return reject(abortReason(signal));
    const method = String(init.method || 'GET').toUpperCase();
    let req;
    let answered = false; // a response head arrived
    let settled = false;
    let failBody; // once a Response is out, a failure rejects its body
    let unfollow = () => {};
    const timer = timeoutMs > 0 ? setTimeout(() => fail(new DOMException(`no response within ${timeoutMs} ms`, 'TimeoutError')), timeoutMs) : undefined;
    const detach = () => {
      clearTimeout(timer);
      unfollow();
    };
    function fail(error) {
      if (settled) return;
      settled = true;
      detach();
      req.destroy();
      (failBody || reject)(error);
    }
    try {
      const body = bodyBytes(init.body);
      const secure = url.startsWith('https:');
      const headers = requestHeaders(init.headers, method, body, mode !== RESPONSE);
      const via = agent || defaultAgent(secure, IDEMPOTENT.has(method));
      const onResponse = (res) => {
        answered = true;
        const chunks = [];
        let settleBody;
        if (mode === RESPONSE) {
          const pending = new Promise((ok, no) => { settleBody = ok; failBody = no; });
          pending.catch(() => {}); // a caller that never reads the body must not see an unhandled rejection
          resolve(response(res, pending));
        }
        let received = 0;
        if (maxBytes && Number(res.headers['content-length']) > maxBytes) return fail(tooLarge(maxBytes));
        res.on('data', (chunk) => {
          received += chunk.length;
          if (maxBytes && received > maxBytes) fail(tooLarge(maxBytes));
          else chunks.push(chunk);
        });
        res.on('error', (err) => fail(fetchFailed(err)));
        res.on('close', () => res.complete || fail(fetchFailed(new Error('the connection closed before the response body was complete'))));
        const deliver = (buffer) => {
          if (settled) return; // aborted while decoding
          settled = true;
          detach();
          if (mode === RESPONSE) return settleBody(buffer);
          const status = res.statusCode;
          const ok = status >= 200 && status < 300;
          const content = ok && mode === BYTES ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : buffer.toString('utf8');
          return resolve([status, header(res.headers, 'content-type'), ok ? null : header(res.headers, 'retry-after'), content]);
        };
        const encoding = res.headers['content-encoding'];
        res.on('end', () => {
          // An identity body is delivered at once: no promise, no extra turn of the microtask queue.
          if (encoding === undefined) deliver(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
          else decode(encoding, Buffer.concat(chunks), maxBytes).then(deliver, (err) => fail(err.name === 'ResponseTooLargeError' ? err : fetchFailed(err)));
        });
      };
      // The shortcut through our own agents skips parsing the URL and setting the headers one by
      // one (node:http still validates each as it writes them): 13-23 us of CPU per call
      // (BENCHMARKS.md). Not with a caller's agent: a proxy agent may set headers or rewrite the
      // path once the request exists, which needs headers not yet written. Not for a path that
      // is not plain printable ASCII (an apiUrl's own path may hold a space or an 'é'): the
      // ordinary way percent-encodes it, node:http would refuse it or send raw bytes.
      let target = mode !== RESPONSE && agent === undefined ? origin(url) : undefined;
      if (target !== undefined && !PLAIN_PATH.test(url.slice(target.length))) target = undefined;
      if (target === undefined) req = client(secure).request(url, { method, headers, agent: via }, onResponse);
      else {
        const list = ['Host', target.hostHeader];
        for (const name in headers) list.push(name, headers[name]);
        const options = { protocol: target.protocol, host: target.hostname, hostname: target.hostname, port: target.port, path: url.slice(target.length), method, headers: list, agent: via };
        req = client(secure).request(options, onResponse);
      }
      req.on('error', (err) => {
        // The server closed an idle keep-alive connection as this request was written to it: it never
        // answered, and an idempotent request is sent once more, on another connection. A POST it may
        // have read is not: the core decides (for a snapshot, it looks for one made since the call).
        const stale = req.reusedSocket && !answered && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
        if (stale && mayResend && IDEMPOTENT.has(method) && !settled && !(signal && signal.aborted)) {
          settled = true;
          detach();
          send(url, init, agent, mode, false, timeoutMs, maxBytes, onAbort, shape).then(resolve, rejectRaw);
        } else fail(fetchFailed(err));
      });
      if (signal) unfollow = onAbort(signal, () => fail(abortReason(signal)));
      req.end(body);
    } catch (err) {
      settled = true;
      detach();
      reject(err);
    }
  });
}

// js/follow.js's shortcut (same symbol there): a GET whose body is handed over as it arrives, for
// the follow routes. No timeout (the stream lasts as long as the process) and no compression (its
// bytes must be readable as they come); the caller's signal, or `return()` on `chunks`, ends it.
// `onAbort` is js/exchange.js's shared follower of the signal (one listener however many follows).
const STREAM = Symbol.for('tensorlake-snapshots.stream');
function openStream(url, given, signal, agent, onAbort = follow) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(abortReason(signal));
    const headers = { ...given, 'Accept-Encoding': 'identity' };
    const secure = url.startsWith('https:');
    let unfollow = () => {};
    const req = client(secure).request(url, { method: 'GET', headers, agent: agent || defaultAgent(secure, true) }, (res) => {
      res.on('close', unfollow);
      // `cancel` destroys the response at once: the iterator's own `return()` would wait for a
      // pending `next()`, which waits for data a silent process may never send.
      resolve({ status: res.statusCode, contentType: header(res.headers, 'content-type'), chunks: res[Symbol.asyncIterator](), cancel: () => res.destroy() });
    });
    req.on('error', (err) => reject(signal && signal.aborted ? abortReason(signal) : fetchFailed(err)));
    if (signal) unfollow = onAbort(signal, () => req.destroy(abortReason(signal)));
    req.end();
  });
}

/** A fetch-shaped transport over node:http / node:https through `agent` (default: keep-alive agents of its own). */
function transport(agent) {
  const fetchFn = (url, init) => send(String(url), init || {}, agent, RESPONSE, true);
  fetchFn[STREAM] = (url, headers, signal, onAbort) => openStream(url, headers, signal, agent, onAbort);
  fetchFn[DIRECT] = (url, method, headers, body, signal, wantBytes, timeoutMs, maxBytes, onAbort, shape) => (
    send(url, { method, headers, body, signal }, agent, wantBytes ? BYTES : TEXT, true, timeoutMs, maxBytes, onAbort, shape));
  return fetchFn;
}

// `transport(agent)` is what a client given `httpAgent` (any http.Agent or https.Agent, a proxy
// agent for one; checked by the caller) sends through.
module.exports = { nodeFetch: transport(undefined), transport };
