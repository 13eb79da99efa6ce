// The Node entry's default transport: a fetch-shaped function speaking HTTP/1.1 over pooled
// keep-alive `node:net` / `node:tls` connections.
//
// Why not `fetch` or `node:http`: a snapshot client's life is short requests, and on a keep-alive
// connection to a nearby server Node's fetch (undici) costs about twice what node:http does,
// which in turn costs about 1.6 times a plain socket exchange (BENCHMARKS.md, per-call reference
// rows). Most of node:http's time goes to machinery this client never uses: streams for request
// and response bodies, events per header, agents that schedule sockets on later ticks. Here a
// request is one socket write and a response is parsed straight from the socket's chunks.
//
// It implements exactly what the wasm module uses of fetch: method, headers, a string or byte
// body, `signal`; a response with `status`, `ok`, `headers.get()`, `text()` and `arrayBuffer()`.
// Failures look like fetch's: a TypeError('fetch failed') whose `cause` says what went wrong, or
// the signal's reason on abort. Compressed bodies are decoded. Redirects are not followed (the API
// does not redirect). No proxy support; pass `fetch` to SandboxClient to use another transport.
'use strict';

const net = require('node:net');
const tls = require('node:tls');
const zlib = require('node:zlib');

/** A response head (status line and headers) larger than this is refused. */
const MAX_HEAD_BYTES = 64 * 1024;
/** A chunk-size line or trailer line larger than this is refused. */
const MAX_LINE_BYTES = 8 * 1024;
/** Idle connections kept per origin; more are closed when released. */
const MAX_IDLE_PER_ORIGIN = 256;
/** A connection idle longer than this is not used for a request that cannot be sent twice. */
const FRESH_FOR_MS = 2_000;
/** An idle connection unused this long is closed (checked as often, so after 15 to 30 s). */
const IDLE_CLOSE_MS = 15_000;

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
// RFC 9110 token, and the header value bytes Node and fetch accept (no CR, LF or NUL, nothing
// above 0xFF since the head is written as latin1).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
// Headers this transport writes itself: a caller's copy would contradict the framing.
const OWN_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);

function abortError(signal) {
  if (signal && signal.reason !== undefined) return signal.reason;
  return new DOMException('This operation was aborted', 'AbortError');
}

// A fetch failure looks like undici's: a TypeError whose cause is what went wrong.
function fetchFailed(cause) {
  return new TypeError('fetch failed', { cause });
}

function protocolError(message) {
  const error = new Error(`invalid HTTP response: ${message}`);
  error.code = 'HPE_INVALID_RESPONSE';
  return error;
}

class NodeHeaders {
  /** @param {Map<string, string>} raw lower-case names */
  constructor(raw) {
    this.raw = raw;
  }
  get(name) {
    const value = this.raw.get(String(name).toLowerCase());
    return value === undefined ? null : value;
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

const DECODERS = {
  gzip: [zlib.gunzip],
  'x-gzip': [zlib.gunzip],
  // "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
  deflate: [zlib.inflate, zlib.inflateRaw],
  br: [zlib.brotliDecompress],
};

function inflateWith(decoders, buffer) {
  return new Promise((resolve, reject) => {
    decoders[0](buffer, (err, out) => {
      if (!err) resolve(out);
      else if (decoders.length > 1) inflateWith(decoders.slice(1), buffer).then(resolve, reject);
      else reject(err);
    });
  });
}

// Undoes a Content-Encoding list ("gzip, br" means gzip first, then br), last coding first. An
// unknown coding is an error: its bytes would otherwise pass for the body.
async function decode(encoding, buffer) {
  const codings = encoding.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  let body = buffer;
  for (const coding of codings.reverse()) {
    const decoders = Object.prototype.hasOwnProperty.call(DECODERS, coding) ? DECODERS[coding] : undefined;
    if (decoders === undefined) throw new Error(`unsupported Content-Encoding ${JSON.stringify(coding)}`);
    if (body.length > 0) body = await inflateWith(decoders, body);
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// Origins and their pools of idle connections.

/** Where an origin is, parsed once, with its idle connections. */
class Origin {
  constructor(key, parsed) {
    this.key = key;
    this.secure = parsed.protocol === 'https:';
    this.host = parsed.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(parsed.port) || (this.secure ? 443 : 80);
    this.hostHeader = parsed.host;
    /** @type {Connection[]} */
    this.idle = [];
  }

  /**
   * The most recently used idle connection, or a new one. A request that must not be sent twice
   * (see IDEMPOTENT) gets only a connection idle for less than FRESH_FOR_MS: servers close idle
   * connections after a few seconds to minutes, and a request written just as that happens can
   * neither be known to have arrived nor be sent again.
   */
  acquire(idempotent) {
    while (this.idle.length > 0) {
      const conn = this.idle[this.idle.length - 1];
      if (conn.closed) {
        this.idle.pop();
        continue;
      }
      if (!idempotent && Date.now() - conn.releasedAt >= FRESH_FOR_MS) break; // older ones stay for GETs
      this.idle.pop();
      return conn;
    }
    return new Connection(this);
  }
}

// A client sends every request to one or two origins, and parsing the URL per request was a
// measurable part of a short call.
const ORIGINS = new Map();

// A request target this client can write as is: starts with '/', printable ASCII only (no space,
// no control character, nothing above 0x7E that a latin1 write would mangle), no dot segments.
const PLAIN_TARGET = /^\/[\x21-\x7e]*$/;

function locate(url) {
  const authority = url.indexOf('//') + 2;
  let end = authority;
  while (end < url.length && url[end] !== '/' && url[end] !== '?' && url[end] !== '#') end += 1;
  const key = url.slice(0, end);
  let origin = ORIGINS.get(key);
  if (origin === undefined) {
    let parsed;
    try {
      parsed = new URL(key);
    } catch (cause) {
      throw new TypeError(`invalid URL: ${url}`, { cause });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`unsupported protocol ${parsed.protocol}`);
    if (parsed.username || parsed.password) throw new TypeError('a URL with credentials cannot be fetched');
    origin = new Origin(key, parsed);
    if (ORIGINS.size >= 64) {
      for (const old of ORIGINS.values()) for (const conn of old.idle) conn.destroy();
      ORIGINS.clear();
    }
    ORIGINS.set(key, origin);
  }
  const hash = url.indexOf('#', end);
  let path = url.slice(end, hash === -1 ? url.length : hash);
  if (path === '' || path[0] === '?') path = `/${path}`;
  if (!PLAIN_TARGET.test(path) || path.includes('/.')) {
    // Anything else goes through the URL parser, which percent-encodes and resolves dot
    // segments exactly as fetch would.
    let parsed;
    try {
      parsed = new URL(url);
    } catch (cause) {
      throw new TypeError(`invalid URL: ${url}`, { cause });
    }
    path = parsed.pathname + parsed.search;
    if (!PLAIN_TARGET.test(path)) throw new TypeError(`invalid URL path: ${JSON.stringify(path)}`);
  }
  return { origin, path };
}

let sweeper;

// One unref'd timer closes connections idle for too long, instead of a timer per release.
function sweepLater() {
  if (sweeper !== undefined) return;
  sweeper = setInterval(() => {
    const now = Date.now();
    let left = 0;
    for (const origin of ORIGINS.values()) {
      origin.idle = origin.idle.filter((conn) => {
        if (!conn.closed && now - conn.releasedAt < IDLE_CLOSE_MS) return true;
        conn.destroy();
        return false;
      });
      left += origin.idle.length;
    }
    if (left === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  }, IDLE_CLOSE_MS);
  sweeper.unref();
}

// ---------------------------------------------------------------------------------------------
// Connections: one socket, one exchange at a time.

class Connection {
  constructor(origin) {
    this.origin = origin;
    this.closed = false;
    this.uses = 0;
    this.releasedAt = 0;
    /** @type {Exchange | null} */
    this.exchange = null;
    const socket = origin.secure
      ? tls.connect({ host: origin.host, port: origin.port, servername: net.isIP(origin.host) ? undefined : origin.host, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host: origin.host, port: origin.port });
    socket.setNoDelay(true);
    // TCP keep-alive probes, as node:http's keep-alive agent sets them: a long quiet exchange (a
    // command streaming no output) is not silently dropped by a NAT or load balancer.
    socket.setKeepAlive(true, 1000);
    socket.on('data', (chunk) => {
      const exchange = this.exchange;
      if (exchange === null) {
        this.destroy(); // bytes nobody asked for: the connection can no longer be trusted
        return;
      }
      try {
        exchange.feed(chunk);
      } catch (err) {
        // A parser bug must fail this exchange, never escape as an uncaught exception.
        exchange.fail(fetchFailed(err), true);
      }
    });
    // The server half-closed: nothing more may be sent on this connection, so it must not be
    // handed out again (the 'close' that follows ends any exchange still reading).
    socket.on('end', () => {
      this.closed = true;
    });
    socket.on('error', (err) => this.gone(err));
    socket.on('close', () => this.gone(null));
    this.socket = socket;
  }

  /** The socket failed or closed: ends the exchange on it, if any, and forgets the connection. */
  gone(err) {
    this.closed = true;
    const exchange = this.exchange;
    this.exchange = null;
    if (exchange !== null) exchange.socketGone(err);
  }

  destroy() {
    this.closed = true;
    this.exchange = null;
    this.socket.destroy();
  }

  /** Back to the pool after a complete exchange, or closed if it may not be reused. */
  release(reusable) {
    this.exchange = null;
    const idle = this.origin.idle;
    // An origin dropped from the cache meanwhile is no longer swept: its connections must not idle.
    if (!reusable || this.closed || idle.length >= MAX_IDLE_PER_ORIGIN || ORIGINS.get(this.origin.key) !== this.origin) {
      this.destroy();
      return;
    }
    this.releasedAt = Date.now();
    // An idle connection must not keep the process alive.
    this.socket.unref();
    idle.push(this);
    sweepLater();
  }
}

// ---------------------------------------------------------------------------------------------
// One request and its response.

// What a request resolves to: a fetch Response (FETCH), or, for js/exchange.js, the parts it
// needs once the whole body is in, with the body as text (PARTS_TEXT) or bytes (PARTS_BYTES).
const FETCH = 0;
const PARTS_TEXT = 1;
const PARTS_BYTES = 2;

const HEAD = 0;
const BODY_LENGTH = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_END = 4;
const TRAILERS = 5;
const UNTIL_CLOSE = 6;
const DONE = 7;

class Exchange {
  constructor(conn, method, signal, mode, respond, refuse, resend) {
    this.conn = conn;
    this.method = method;
    this.mode = mode;
    this.signal = signal;
    this.respond = respond;
    this.refuse = refuse;
    // Called instead of refuse when the request may be sent again on a new connection.
    this.resend = resend;
    this.reused = conn.uses > 0;
    this.state = HEAD;
    this.receivedAny = false;
    this.pending = null;
    this.status = 0;
    this.headers = null;
    this.keepAlive = false;
    this.remaining = 0;
    this.chunks = [];
    this.settleBody = null;
    this.decoding = false;
    this.failBody = null;
    this.onAbort = null;
    if (signal) {
      this.onAbort = () => this.onAbortSignal(signal);
      signal.addEventListener('abort', this.onAbort);
    }
  }

  feed(chunk) {
    this.receivedAny = true;
    let data = chunk;
    if (this.pending !== null) {
      data = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let at = 0;
    while (this.state !== DONE) {
      switch (this.state) {
        case HEAD: {
          const end = data.indexOf(HEAD_END, at);
          if (end === -1 || end - at > MAX_HEAD_BYTES) return this.keep(data, at, end === -1 ? MAX_HEAD_BYTES : 0, 'the response head is larger than 64 KiB');
          const head = data.toString('latin1', at, end);
          at = end + 4;
          this.readHead(head);
          break;
        }
        case BODY_LENGTH:
        case CHUNK_DATA: {
          const take = Math.min(this.remaining, data.length - at);
          if (take > 0) this.chunks.push(data.subarray(at, at + take));
          at += take;
          this.remaining -= take;
          if (this.remaining > 0) return undefined;
          if (this.state === BODY_LENGTH) this.complete(data.length > at);
          else this.state = CHUNK_END;
          break;
        }
        case CHUNK_SIZE:
        case TRAILERS: {
          const end = data.indexOf(CRLF, at);
          if (end === -1) return this.keep(data, at, MAX_LINE_BYTES, 'a chunk-size or trailer line is too long');
          const line = data.toString('latin1', at, end);
          at = end + 2;
          if (this.state === TRAILERS) {
            if (line === '') this.complete(data.length > at);
            break;
          }
          const size = line.split(';', 1)[0].trim();
          if (!/^[0-9a-fA-F]{1,12}$/.test(size)) return this.fail(fetchFailed(protocolError(`bad chunk size ${JSON.stringify(size.slice(0, 20))}`)), true);
          this.remaining = parseInt(size, 16);
          this.state = this.remaining === 0 ? TRAILERS : CHUNK_DATA;
          break;
        }
        case CHUNK_END: {
          if (data.length - at < 2) return this.keep(data, at, 2, '');
          if (data[at] !== 13 || data[at + 1] !== 10) return this.fail(fetchFailed(protocolError('a chunk is not followed by CRLF')), true);
          at += 2;
          this.state = CHUNK_SIZE;
          break;
        }
        case UNTIL_CLOSE:
          if (at < data.length) this.chunks.push(at === 0 ? data : data.subarray(at));
          return undefined;
        default:
          return undefined;
      }
    }
    return undefined;
  }

  /** Keeps the unparsed tail for the next chunk, unless it is already too long to be valid. */
  keep(data, at, limit, tooLong) {
    if (data.length - at > limit) return this.fail(fetchFailed(protocolError(tooLong)), true);
    this.pending = data.subarray(at);
    return undefined;
  }

  readHead(head) {
    const lines = head.split('\r\n');
    const statusLine = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: |$)/.exec(lines[0]);
    if (statusLine === null) return this.fail(fetchFailed(protocolError(`bad status line ${JSON.stringify(lines[0].slice(0, 40))}`)), true);
    const status = Number(statusLine[2]);
    if (status < 200) {
      // 100 Continue, 103 Early Hints: informational, the real response follows. 101 would
      // switch protocols, which this client never asks for.
      if (status === 101) return this.fail(fetchFailed(protocolError('unexpected 101 Switching Protocols')), true);
      return undefined;
    }
    // A Map, not an object: names come from the network (think `__proto__`), and a Map of
    // fresh strings does not make the engine internalise each name on every response.
    const headers = new Map();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      if (colon <= 0) return this.fail(fetchFailed(protocolError(`bad header line ${JSON.stringify(line.slice(0, 40))}`)), true);
      const rawName = line.slice(0, colon);
      // RFC 9112: no whitespace between a field name and its colon ("Content-Length :" is
      // refused, not guessed at).
      if (!TOKEN.test(rawName)) return this.fail(fetchFailed(protocolError(`bad header name ${JSON.stringify(rawName.slice(0, 40))}`)), true);
      const name = rawName.toLowerCase();
      const value = line.slice(colon + 1).trim();
      const earlier = headers.get(name);
      headers.set(name, earlier === undefined ? value : `${earlier}, ${value}`);
    }
    const connection = (headers.get('connection') || '').toLowerCase();
    this.keepAlive = statusLine[1] === '1' ? !/(^|[\s,])close($|[\s,])/.test(connection) : /(^|[\s,])keep-alive($|[\s,])/.test(connection);
    // What delimits the body (RFC 9112 section 6.3).
    const transferEncoding = headers.get('transfer-encoding');
    const contentLength = headers.get('content-length');
    let state;
    if (this.method === 'HEAD' || status === 204 || status === 304) {
      state = BODY_LENGTH;
      this.remaining = 0;
    } else if (transferEncoding !== undefined) {
      state = /(^|,)\s*chunked\s*$/i.test(transferEncoding) ? CHUNK_SIZE : UNTIL_CLOSE;
      // A message with both is suspect (request smuggling): read it, but reuse nothing.
      if (contentLength !== undefined) this.keepAlive = false;
    } else if (contentLength !== undefined) {
      const values = contentLength.split(',').map((v) => v.trim());
      if (!values.every((v) => /^\d{1,15}$/.test(v) && v === values[0])) {
        return this.fail(fetchFailed(protocolError(`bad Content-Length ${JSON.stringify(contentLength.slice(0, 40))}`)), true);
      }
      state = BODY_LENGTH;
      this.remaining = Number(values[0]);
    } else {
      state = UNTIL_CLOSE;
    }
    if (state === UNTIL_CLOSE) this.keepAlive = false;
    this.state = state;
    this.status = status;
    this.headers = headers;
    if (this.mode === FETCH) {
      const body = new Promise((resolve, reject) => {
        this.settleBody = resolve;
        this.failBody = reject;
      });
      body.catch(() => {}); // a caller that never reads the body must not see an unhandled rejection
      this.respond(new NodeResponse(status, headers, body));
    }
    // A bodiless response completes in feed(), which can tell whether bytes follow it.
    return undefined;
  }

  /** The response is complete: the connection goes back to the pool, the body is delivered. */
  complete(extraBytes) {
    this.state = DONE;
    // Bytes after a complete response were not asked for: that connection is not reused.
    this.conn.release(this.keepAlive && !extraBytes);
    const chunks = this.chunks;
    const buffer = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const encoding = this.headers.get('content-encoding');
    if (encoding === undefined) {
      this.detach();
      this.deliver(buffer);
      return;
    }
    // Decompressing a large body takes a while; the caller's signal still counts until it ends.
    this.decoding = true;
    decode(encoding, buffer).then(
      (decoded) => this.decoded(() => this.deliver(decoded)),
      (err) => this.decoded(() => this.bodyFailed(fetchFailed(err))),
    );
  }

  /** Ends a decompression with `settle`, unless an abort ended the exchange first. */
  decoded(settle) {
    if (!this.decoding) return;
    this.decoding = false;
    this.detach();
    settle();
  }

  onAbortSignal(signal) {
    if (this.decoding) this.decoded(() => this.bodyFailed(abortError(signal)));
    else this.fail(abortError(signal), true);
  }

  deliver(buffer) {
    if (this.mode === FETCH) {
      this.settleBody(buffer);
      return;
    }
    // The same parts js/exchange.js makes of a fetch Response.
    const status = this.status;
    const ok = status >= 200 && status < 300;
    const content = ok && this.mode === PARTS_BYTES ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : buffer.toString('utf8');
    const headers = this.headers;
    this.respond([status, headers.get('content-type') ?? null, ok ? null : headers.get('retry-after') ?? null, content]);
  }

  bodyFailed(error) {
    if (this.mode === FETCH) this.failBody(error);
    else this.refuse(error);
  }

  /** The socket errored or closed while this exchange was on it. */
  socketGone(err) {
    if (this.state === DONE) return;
    if (this.state === UNTIL_CLOSE && err === null) {
      this.complete(false);
      return;
    }
    const aborted = this.signal && this.signal.aborted;
    if (!aborted && !this.receivedAny && this.reused && (err === null || err.code === 'ECONNRESET' || err.code === 'EPIPE') && this.resend) {
      // The server closed an idle keep-alive connection just as this request was written to it:
      // it never answered, and the (idempotent) request is sent again once, on a new
      // connection, as undici does.
      this.state = DONE;
      this.detach();
      this.resend();
      return;
    }
    const cause = err || new Error(this.headers === null ? 'the connection closed before a response arrived' : 'the connection closed before the response body was complete');
    this.fail(aborted ? abortError(this.signal) : fetchFailed(cause), false);
  }

  /** Ends the exchange with `error`; the connection is closed (`destroy`) if still open. */
  fail(error, destroy) {
    if (this.state === DONE) return undefined;
    this.state = DONE;
    this.detach();
    if (destroy) this.conn.destroy();
    if (this.headers === null) this.refuse(error);
    else this.bodyFailed(error);
    return undefined;
  }

  detach() {
    if (this.onAbort !== null) this.signal.removeEventListener('abort', this.onAbort);
    this.onAbort = null;
  }
}

function headerLines(headers) {
  let lines = '';
  const add = (name, value) => {
    name = String(name);
    value = String(value).trim();
    if (!TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    if (BAD_VALUE.test(value)) throw new TypeError(`invalid value for header ${name}`);
    const lower = name.toLowerCase();
    if (OWN_HEADERS.has(lower) || lower === 'accept-encoding') return;
    lines += `${name}: ${value}\r\n`;
  };
  if (headers == null) return lines;
  if (typeof headers.forEach === 'function' && !Array.isArray(headers)) headers.forEach((value, name) => add(name, value));
  else if (Array.isArray(headers)) for (const [name, value] of headers) add(name, value);
  else for (const name of Object.keys(headers)) add(name, headers[name]);
  return lines;
}

function bodyBytes(body) {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('the request body must be a string, an ArrayBuffer or a typed array');
}

function send(url, init, mayResend, mode) {
  const signal = init.signal;
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(abortError(signal));
      return;
    }
    let origin;
    let path;
    let head;
    let body;
    const method = String(init.method || 'GET').toUpperCase();
    try {
      ({ origin, path } = locate(url));
      if (!TOKEN.test(method)) throw new TypeError(`invalid method ${JSON.stringify(method)}`);
      body = bodyBytes(init.body);
      head = `${method} ${path} HTTP/1.1\r\nHost: ${origin.hostHeader}\r\nConnection: keep-alive\r\nAccept-Encoding: gzip, deflate, br\r\n${headerLines(init.headers)}`;
      if (body !== undefined) head += `Content-Length: ${body.length}\r\n`;
      else if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE') head += 'Content-Length: 0\r\n';
      head += '\r\n';
    } catch (err) {
      reject(err);
      return;
    }
    const idempotent = IDEMPOTENT.has(method);
    const conn = origin.acquire(idempotent);
    // Only a request that may safely be repeated is sent again after a stale connection: a POST
    // the server read before the reset must not run twice (the core decides what to do instead).
    const resend = mayResend && idempotent ? () => send(url, init, false, mode).then(resolve, reject) : null;
    conn.exchange = new Exchange(conn, method, signal, mode, resolve, reject, resend);
    conn.uses += 1;
    conn.socket.ref();
    if (body === undefined || body.length === 0) conn.socket.write(head, 'latin1');
    else conn.socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  });
}

/** A fetch-shaped HTTP/1.1 transport over pooled keep-alive node:net / node:tls connections. */
function nodeFetch(url, init = {}) {
  return send(String(url), init || {}, true, FETCH);
}

// js/exchange.js's shortcut (same symbol there): the parts it would read from a Response, in one
// promise, without the Response, its Headers and the text() promise. Every short call saved a few
// microseconds, and more in a cold process.
nodeFetch[Symbol.for('tensorlake-snapshots.exchange')] = (url, method, headers, body, signal, wantBytes) =>
  send(String(url), { method, headers, body, signal }, true, wantBytes ? PARTS_BYTES : PARTS_TEXT);

module.exports = { nodeFetch };
