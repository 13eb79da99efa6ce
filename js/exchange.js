// One HTTP exchange, start to finish: the host's `fetch` (or the caller's `fetch` option), then
// the whole body, bounded by the request timeout and the caller's signal through one
// AbortController. It resolves to [status, Content-Type, Retry-After, body], and rejects with
// [kind, error] where kind is 'abort' (the caller's signal), 'timeout' or 'network'. Doing this
// here rather than from wasm saves, on every request, a second promise bridge and the wasm
// closures a timer and a signal listener would need.
//
// No decision is made here: the timeout, retries and error mapping are decided in Rust
// (src/http.rs, src/wasm/host.rs).
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

export function exchange(fetchFn, url, method, headers, body, signal, timeoutMs, wantBytes) {
  anchor(timeoutMs);
  const send = fetchFn || fetch;
  // The Node entry's own transport (npm/node/transport.cjs) hands over the parts directly and
  // bounds the exchange itself: a timer and the caller's signal, no AbortController, no listener
  // per request. Its timeout rejects with a TimeoutError DOMException, which nothing else makes.
  const direct = send[DIRECT];
  if (direct) {
    return direct(url, method, headers, body, signal, wantBytes, timeoutMs).catch((error) => {
      throw [signal && signal.aborted ? 'abort' : error instanceof DOMException && error.name === 'TimeoutError' ? 'timeout' : 'network', error];
    });
  }
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`no response within ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  const onAbort = () => controller.abort(signal.reason);
  if (signal) {
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort);
  }
  const settle = () => {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', onAbort);
  };
  let pending;
  try {
    pending = Promise.resolve(send(url, { method, headers, body, signal: controller.signal })).then((res) => {
      const status = res.status;
      const ok = status >= 200 && status < 300;
      const read = ok && wantBytes ? res.arrayBuffer().then((buffer) => new Uint8Array(buffer)) : res.text();
      return read.then((content) => [status, res.headers.get('content-type'), ok ? null : res.headers.get('retry-after'), content]);
    });
  } catch (error) {
    pending = Promise.reject(error);
  }
  return pending
    .then(
      (parts) => {
        settle();
        return parts;
      },
      (error) => {
        settle();
        throw [signal && signal.aborted ? 'abort' : timedOut ? 'timeout' : 'network', error];
      },
    );
}
