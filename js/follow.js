// A streaming GET for `followStdout`/`followStderr`/`followOutput`: the response head, then its
// body as text chunks as they arrive, never the whole body. js/exchange.js reads a body whole, which
// a stream that lasts as long as a process cannot be. Little is decided here (only the refusal of a
// 2xx that is not an event stream, see `stream`): the request (URL, headers, trace), the SSE
// parsing, the error mapping and the iterator protocol are in Rust (src/wasm/follow.rs,
// core/src/processes.rs).
//
// The Node entry's transport (npm/node/transport.cjs) offers the same under STREAM, on node:http;
// any other fetch (the global one in browsers, Deno and Bun, or the caller's) is used through
// `response.body.getReader()`.
//
// An ES module, as wasm-bindgen's web glue imports it; scripts/build.sh compiles a CommonJS copy.

import { onAbort } from './exchange.js';

const STREAM = Symbol.for('tensorlake-snapshots.stream');

// `promise`, or a rejection with signal.reason as soon as the signal fires: a fetch that ignores
// its signal, or a body that never ends, must not hold a follow open after the caller's abort.
function untilAbort(signal, promise) {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  let unfollow = () => {};
  const aborted = new Promise((_, reject) => { unfollow = onAbort(signal, () => reject(signal.reason)); });
  return Promise.race([promise, aborted]).finally(() => unfollow());
}

// Resolves to a stream: `status`, `read()` (a promise of the next text chunk, or undefined at the
// end) and `cancel()` (closes the connection at once; a pending `read()` then settles).
export async function openStream(fetchFn, url, headers, signal) {
  const send = fetchFn || fetch;
  if (send[STREAM]) {
    const { status, contentType, chunks, cancel } = await send[STREAM](url, headers, signal, onAbort);
    return stream(status, chunks, cancel, contentType);
  }
  const opening = Promise.resolve().then(() => send(url, { method: 'GET', headers, signal }));
  const res = await untilAbort(signal, opening).catch((error) => {
    // Aborted while opening: a fetch that ignored its signal may still answer, and its stream
    // would stay open for as long as the process runs.
    opening.then((late) => late && late.body && typeof late.body.cancel === 'function' && late.body.cancel().catch(() => {}), () => {});
    throw error;
  });
  const body = res.body && typeof res.body.getReader === 'function' ? res.body.getReader() : undefined;
  // A fetch without streaming bodies: the text as one chunk, once it is whole.
  const chunks = body ? { next: () => untilAbort(signal, body.read()) } : oneChunk(res, signal);
  return stream(res.status, chunks, () => (body ? body.cancel() : undefined), res.headers.get('content-type'));
}

function oneChunk(res, signal) {
  let done = false;
  return {
    next: async () => {
      if (done) return { done: true };
      done = true;
      return { done: false, value: new Uint8Array(await untilAbort(signal, res.arrayBuffer())) };
    },
  };
}

function stream(status, chunks, close, contentType) {
  // A 2xx that is not an event stream (a proxy's sign-in page, a JSON answer) would end the follow
  // at once as if the process had exited silently; refused here, where the content type is at
  // hand (a check in src/wasm/follow.rs measured 140 B of gzipped wasm), it reaches the caller as
  // the SandboxConnectionError of a stream that could not be opened.
  if (status >= 200 && status < 300 && contentType && !/^\s*text\/event-stream\s*(;|$)/i.test(contentType)) {
    try {
      const closed = close();
      if (closed && typeof closed.catch === 'function') closed.catch(() => {});
    } catch {
      // already closed
    }
    throw new TypeError(`expected a text/event-stream response, got ${contentType}`);
  }
  const decoder = new TextDecoder();
  return {
    status,
    async read() {
      for (;;) {
        const { done, value } = await chunks.next();
        if (done) {
          const tail = decoder.decode();
          return tail === '' ? undefined : tail;
        }
        const text = decoder.decode(value, { stream: true });
        if (text !== '') return text;
      }
    },
    cancel() {
      try {
        const closed = close();
        if (closed && typeof closed.catch === 'function') closed.catch(() => {});
      } catch {
        // already closed
      }
    },
  };
}
