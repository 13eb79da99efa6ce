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
// Keep this file to `export function` declarations: the build derives the CommonJS copy used by
// the Node entry point by removing that `export` keyword.

export function exchange(fetchFn, url, method, headers, body, signal, timeoutMs, wantBytes) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`no response within ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  const onAbort = () => controller.abort(signal.reason);
  if (signal) {
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  const settle = () => {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', onAbort);
  };
  let pending;
  try {
    pending = Promise.resolve((fetchFn || fetch)(url, { method, headers, body, signal: controller.signal }));
  } catch (error) {
    pending = Promise.reject(error);
  }
  return pending
    .then((res) => {
      const status = res.status;
      const ok = status >= 200 && status < 300;
      const read = ok && wantBytes ? res.arrayBuffer().then((buffer) => new Uint8Array(buffer)) : res.text();
      return read.then((content) => [status, res.headers.get('content-type'), ok ? null : res.headers.get('retry-after'), content]);
    })
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
