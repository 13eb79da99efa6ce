// One HTTP exchange, start to finish: the host's `fetch` (or the caller's `fetch` option), then
// the whole body. It resolves to [status, Content-Type, Retry-After, body], so the wasm side reads
// a response in one crossing and awaits one promise instead of two. No decision is made here:
// retries, timeouts and error mapping stay in Rust (src/http.rs, src/wasm/host.rs); a failure
// simply rejects with the host's error.
//
// Keep this file to `export function` declarations: the build derives the CommonJS copy used by
// the Node entry point by removing that `export` keyword.

export function exchange(fetchFn, url, method, headers, body, signal, wantBytes) {
  const send = fetchFn || fetch;
  return Promise.resolve(send(url, { method, headers, body, signal })).then((res) => {
    const status = res.status;
    const ok = status >= 200 && status < 300;
    const read = ok && wantBytes ? res.arrayBuffer().then((buffer) => new Uint8Array(buffer)) : res.text();
    return read.then((content) => [status, res.headers.get('content-type'), ok ? null : res.headers.get('retry-after'), content]);
  });
}
