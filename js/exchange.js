// One HTTP exchange, start to finish: the host's `fetch` (or the caller's `fetch` option), then
// the whole body, bounded by the request timeout and the caller's signal through one
// AbortController. It resolves to [status, Content-Type, Retry-After, body], and rejects with
// [kind, error] where kind is 'abort' (the caller's signal), 'timeout', 'too_large', 'unsent' (no
// connection could be made) or 'network'. Doing this
// here rather than from wasm saves, on every request, a second promise bridge and the wasm
// closures a timer and a signal listener would need.
//
// No decision is made here: the timeout, retries and error mapping are decided in Rust
// (core/src/call.rs, src/wasm/js_platform.rs).
//
// An ES module, as wasm-bindgen's web glue imports it; scripts/build.sh compiles a CommonJS copy
// (TypeScript's compiler) for the nodejs glue, which `require`s it.

const DIRECT = Symbol.for('tensorlake-snapshots.exchange');

// Node keeps one timer list per distinct delay and frees it when its last timer is cleared, so
// sequential requests each built and tore down a list and re-armed the libuv timer: ~10 us per
// short call. An idle, unref'd anchor per delay keeps the list alive (it re-arms itself when it
// fires, and never holds the process open). Harmless where timers work otherwise.
const ANCHORS = new Map();

function anchor(timeoutMs) {
  if (ANCHORS.has(timeoutMs) || ANCHORS.size >= 8) return;
  const timer = setTimeout(() => timer.refresh(), timeoutMs);
  // Browsers and Deno hand back a number: no lists to keep, and a timer that could hold Deno open.
  if (typeof timer !== 'object' || typeof timer.unref !== 'function' || typeof timer.refresh !== 'function') {
    clearTimeout(timer);
  } else {
    timer.unref();
  }
  ANCHORS.set(timeoutMs, timer);
}

// Callers often share one AbortSignal among many concurrent calls, and Node warns
// (MaxListenersExceededWarning) past ten listeners on one signal. So each signal gets one real
// listener, which fans out to the callbacks of the calls that currently follow it.
const FOLLOWERS = new WeakMap();

/** Calls `callback` once when `signal` fires; returns a function that stops following it. */
export function onAbort(signal, callback) {
  if (!signal || typeof signal.addEventListener !== 'function') return () => {};
  let followers = FOLLOWERS.get(signal);
  if (!followers) {
    followers = new Set();
    FOLLOWERS.set(signal, followers);
    signal.addEventListener('abort', () => {
      const now = [...followers];
      followers.clear();
      for (const follower of now) follower();
    }, { once: true });
  }
  followers.add(callback);
  return () => followers.delete(callback);
}

/** The error a transport rejects with when a body passes `maxBytes`. */
export function tooLarge(maxBytes) {
  const error = new RangeError(`the response is larger than maxResponseBytes (${maxBytes} bytes)`);
  error.name = 'ResponseTooLargeError';
  return error;
}

// Reads a fetch Response's body, stopping at `maxBytes` decoded bytes (fetch has undone any
// Content-Encoding): a hostile server's bomb costs at most that much memory. `stop` is the
// exchange's own signal: once it fires (a timeout, the caller's abort) nobody will read the body,
// which a fetch that ignored its signal would otherwise keep open and read to the end.
async function readCapped(res, asBytes, maxBytes, stop) {
  const declared = Number(res.headers.get('content-length'));
  if (declared > maxBytes) {
    if (res.body && typeof res.body.cancel === 'function') res.body.cancel().catch(() => {});
    throw tooLarge(maxBytes);
  }
  let bytes;
  if (res.body && typeof res.body.getReader === 'function') {
    const reader = res.body.getReader();
    const cancel = () => reader.cancel().catch(() => {});
    if (stop.aborted) {
      cancel();
      throw stop.reason;
    }
    stop.addEventListener('abort', cancel, { once: true });
    const chunks = [];
    let total = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > maxBytes) {
          cancel();
          throw tooLarge(maxBytes);
        }
        chunks.push(value);
      }
    } finally {
      stop.removeEventListener('abort', cancel);
    }
    bytes = chunks.length === 1 ? chunks[0] : new Uint8Array(total);
    if (chunks.length !== 1) {
      let at = 0;
      for (const chunk of chunks) { bytes.set(chunk, at); at += chunk.byteLength; }
    }
  } else {
    // A caller's fetch without a streaming body: checked once it is whole.
    bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
  }
  return asBytes ? bytes : new TextDecoder().decode(bytes);
}

// A connection that was never made (Node's codes, on fetch's `cause`; browsers do not say): nothing
// was sent, so even a request that creates something did not take effect and may go again.
const UNSENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

const kindOf = (signal, timedOut, error) => (signal && signal.aborted ? 'abort'
  : error && error.name === 'ResponseTooLargeError' ? 'too_large'
    : timedOut ? 'timeout'
      : error && error.cause && UNSENT.has(error.cause.code) ? 'unsent' : 'network');

// How the direct transport's failures are rejected (no `.catch`, so no promise per request).
const shapeDirect = (error, signal) => [kindOf(signal, error instanceof DOMException && error.name === 'TimeoutError', error), error];

export function exchange(fetchFn, url, method, headers, body, signal, timeoutMs, wantBytes, maxBytes) {
  anchor(timeoutMs);
  const send = fetchFn || fetch;
  // The Node entry's own transport (npm/node/transport.cjs) hands over the parts directly and
  // bounds the exchange itself: a timer, the caller's signal (followed through onAbort) and
  // maxBytes, no AbortController per request. Its timeout rejects with a TimeoutError
  // DOMException, which nothing else makes.
  const direct = send[DIRECT];
  if (direct) {
    return direct(url, method, headers, body, signal, wantBytes, timeoutMs, maxBytes, onAbort, shapeDirect);
  }
  const controller = new AbortController();
  // The timeout and the caller's abort also reject the exchange themselves: a fetch that ignores
  // its signal (a wrapper that drops init.signal) would otherwise leave the call pending forever.
  let fail;
  const stopped = new Promise((_, reject) => { fail = reject; });
  const stop = (reason) => {
    controller.abort(reason);
    fail(reason);
  };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop(new DOMException(`no response within ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  let unfollow = () => {};
  if (signal) {
    if (signal.aborted) stop(signal.reason);
    else unfollow = onAbort(signal, () => stop(signal.reason));
  }
  const settle = () => {
    clearTimeout(timer);
    unfollow();
  };
  let pending;
  try {
    pending = Promise.resolve(send(url, { method, headers, body, signal: controller.signal })).then((res) => {
      const status = res.status;
      const ok = status >= 200 && status < 300;
      return readCapped(res, ok && wantBytes, maxBytes, controller.signal)
        .then((content) => [status, res.headers.get('content-type'), ok ? null : res.headers.get('retry-after'), content]);
    });
  } catch (error) {
    pending = Promise.reject(error);
  }
  return Promise.race([pending, stopped])
    .then(
      (parts) => {
        settle();
        return parts;
      },
      (error) => {
        settle();
        throw [kindOf(signal, timedOut, error), error];
      },
    );
}

// ---- The call driver (src/wasm/driver.rs) ----
// Drives one call's Rust future: polls it, and when it hands over a promise (an HTTP exchange),
// awaits that promise here and polls again with its outcome; when it waits for anything else (a
// timer, a caller's promise), parks until its waker calls `wake`. A call is thus one async
// function with one native `await` per exchange, instead of promise adapters and closures made
// per call. No decision is made here.
//
// It lives in this module rather than a file of its own on purpose: every snippet is one more
// module a browser fetches in parallel, and wasm-bindgen-test-runner's server (tiny_http 0.12)
// can leave a fifth connection opened in one burst unserved behind four keep-alive ones, so with
// five snippets the Chromium runs of tests/wasm.rs hung in about half of the runs
// (scripts/wasm-tests.sh checks the count).

/** What `poll` returns when the task failed; the next `poll` returns the error. */
export const FAILED = Object.freeze({ failed: true });
/** What `poll` returns when the task waits for a wake-up. */
export const PARK = Object.freeze({ park: true });

// Parked tasks: id -> the function that resumes their driver.
const PARKED = new Map();

/** Resumes the driver of a parked task (a spurious wake just costs a poll). */
export function wake(id) {
  const resume = PARKED.get(id);
  if (resume !== undefined) {
    PARKED.delete(id);
    resume();
  }
}

/**
 * The promise of task `id`'s result. `poll(id, value, ok)` steps the task with the outcome of
 * what it last handed over and returns its result, a promise to await (a result is never one),
 * PARK or FAILED.
 */
export async function drive(poll, id) {
  let value;
  let ok = true;
  for (;;) {
    const out = poll(id, value, ok);
    if (out instanceof Promise) {
      try {
        value = await out;
        ok = true;
      } catch (error) {
        value = error;
        ok = false;
      }
    } else if (out === PARK) {
      await new Promise((resume) => PARKED.set(id, resume));
      value = undefined;
      ok = true;
    } else if (out === FAILED) {
      throw poll(id, undefined, true);
    } else {
      return out;
    }
  }
}
