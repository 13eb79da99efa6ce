// Calls driven from JS (src/wasm/driver.rs, `drive` in js/exchange.js): a call started from inside
// another call's callback, many calls at once reusing task slots, retries that sleep between
// attempts, and aborts during those sleeps, through the built package with a scripted `fetch` (no server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxClient, SnapshotNotFoundError, RemoteAPIError } from 'tensorlake-snapshots';

const API = 'http://127.0.0.1:9';
const json = (body, status = 200, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const snapshot = (id, status = 'completed') => ({ id, status, sandbox_id: 'sbx-1', created_at: 1764680000000 });

/** A client whose fetch answers from `handler(url, n)`; `n` counts requests from 1. */
function scripted(handler, options = {}) {
  let n = 0;
  const fetch = async (url) => handler(String(url), ++n);
  return new SandboxClient({ apiUrl: API, fetch, maxRetries: 3, ...options });
}

test('a call started inside another call\'s onStatus runs to its own result', async () => {
  const client = scripted((url) => (url.includes('/snapshot') && !url.includes('/snapshots/')
    ? json({ snapshot_id: 'snap-w', status: 'in_progress' })
    : json(snapshot(url.split('/').pop()))));
  const nested = [];
  const result = await client.snapshotAndWait('sbx-1', {
    // Called while the outer call is being polled: the nested calls start (and take their first
    // step) right there, before the outer step ends.
    onStatus: (s) => nested.push(client.getSnapshot(`inner-${s.snapshotId}`), client.getSnapshot('missing-x').catch((e) => e)),
  });
  assert.equal(result.snapshotId, 'snap-w');
  const [inner, missing] = await Promise.all(nested);
  assert.equal(inner.snapshotId, 'inner-snap-w');
  assert.equal(missing.snapshotId, 'missing-x', 'the scripted server answers every id');
});

test('a call started inside a tokenProvider, itself a call of another client, completes', async () => {
  const other = scripted((url) => json(snapshot(url.split('/').pop())));
  let started;
  const client = scripted((url) => json(snapshot(url.split('/').pop())), {
    tokenProvider: () => {
      started = other.getSnapshot('from-provider');
      return 'token-1';
    },
  });
  assert.equal((await client.getSnapshot('snap-1')).snapshotId, 'snap-1');
  assert.equal((await started).snapshotId, 'from-provider');
});

test('hundreds of calls at once, half failing, settle each with its own outcome, round after round', async () => {
  const client = scripted((url) => {
    const id = url.split('/').pop();
    return id.startsWith('gone-') ? json({ message: `no ${id}` }, 404) : json(snapshot(id));
  });
  for (let round = 0; round < 3; round++) {
    const ids = Array.from({ length: 300 }, (_, i) => (i % 2 ? `gone-${round}-${i}` : `snap-${round}-${i}`));
    const outcomes = await Promise.all(ids.map((id) => client.getSnapshot(id).catch((e) => e)));
    outcomes.forEach((outcome, i) => {
      if (i % 2) {
        assert.ok(outcome instanceof SnapshotNotFoundError, `${ids[i]}: ${outcome}`);
        assert.equal(outcome.snapshotId, ids[i]);
      } else {
        assert.equal(outcome.snapshotId, ids[i]);
      }
    });
  }
});

test('a retry sleeps between attempts, then resumes the same call', async () => {
  const client = scripted((url, n) => (n < 3
    ? json({ message: 'busy' }, 503, { 'retry-after': '0' })
    : json(snapshot('snap-r'))));
  assert.equal((await client.getSnapshot('snap-r')).snapshotId, 'snap-r');
});

test('an abort during the sleep before a retry rejects at once with the reason', async () => {
  const client = scripted(() => json({ message: 'busy' }, 503, { 'retry-after': '30' }), { requestTimeout: 120 });
  const controller = new AbortController();
  const started = Date.now();
  const pending = client.getSnapshot('snap-a', { signal: controller.signal });
  setTimeout(() => controller.abort(new Error('stop now')), 50);
  await assert.rejects(pending, /stop now/);
  assert.ok(Date.now() - started < 5_000, 'did not wait out the 30 s Retry-After');
});

test('a failing call rejects with its typed error, and the next call on the client works', async () => {
  const client = scripted((url, n) => (n === 1 ? json({ message: 'bad' }, 400) : json(snapshot('snap-ok'))));
  await assert.rejects(client.getSnapshot('snap-bad'), (e) => e instanceof RemoteAPIError && e.statusCode === 400);
  assert.equal((await client.getSnapshot('snap-ok')).snapshotId, 'snap-ok');
});
