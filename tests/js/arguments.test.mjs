// Arguments that must be refused before any request, numbers that go out exactly, and outcomes
// that mean what they say, through the built package with a scripted `fetch` (no server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxClient, SnapshotNotFoundError } from 'tensorlake-snapshots';

const API = 'http://127.0.0.1:9';

/** A client whose fetch answers from `handler(url, init)`, recording every request. */
function scripted(handler = () => { throw new Error('no request was expected'); }, options = {}) {
  const sent = [];
  const fetch = async (url, init) => {
    sent.push({ url: String(url), method: init.method, body: init.body });
    return handler(String(url), init, sent.length);
  };
  return { client: new SandboxClient({ apiUrl: API, fetch, maxRetries: 3, ...options }), sent };
}

const json = (body, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

test('ids that would change the route or cannot be sent are TypeErrors before any request', async () => {
  const { client, sent } = scripted();
  const bad = ['.', '..', '', '  ', 'a'.repeat(1025), 'x'.repeat(50_000_000), '\uD800snap', 'snap\uDC00', 'a\nb'];
  for (const id of bad) {
    for (const call of [(i) => client.deleteSnapshot(i), (i) => client.getSnapshot(i), (i) => client.deleteSandbox(i)]) {
      await assert.rejects(call(id), (err) => err instanceof TypeError && /snapshotId|sandboxId/.test(err.message),
        `id ${JSON.stringify(id.slice(0, 20))} (${id.length} chars)`);
    }
  }
  assert.equal(sent.length, 0, 'nothing was sent');
});

test('ids given as options and the namespace follow the id rules too', async () => {
  // A lone surrogate became U+FFFD on the way into wasm (a restore from another snapshot), and a
  // namespace of '..' or '.' sent GET /v1/snapshots or /v1/namespaces/snapshots.
  const { client, sent } = scripted();
  const lone = 'snap\uD800';
  await assert.rejects(client.createSandbox({ snapshotId: lone }), (e) => e instanceof TypeError && /snapshotId.*surrogates/.test(e.message));
  await assert.rejects(client.createAndConnect({ name: lone }), (e) => e instanceof TypeError && /name.*surrogates/.test(e.message));
  await assert.rejects(client.listSnapshots({ sandboxId: lone }), (e) => e instanceof TypeError && /sandboxId.*surrogates/.test(e.message));
  for (const namespace of ['..', '.', 'a\u0000b', 'n'.repeat(1025), 'ns\uDC00']) {
    assert.throws(() => new SandboxClient({ apiUrl: API, namespace }), (e) => e instanceof TypeError && /^namespace/.test(e.message), JSON.stringify(namespace.slice(0, 20)));
    assert.throws(() => SandboxClient.forLocalhost({ namespace }), TypeError);
  }
  assert.equal(sent.length, 0, 'nothing was sent');
  assert.equal(new SandboxClient({ apiUrl: API, namespace: 'team-é' }).toJSON().namespace, 'team-é');
});

test('an id with a paired surrogate is fine and is sent percent-encoded', async () => {
  const { client, sent } = scripted(() => json({ id: 'snap-😀', status: 'completed' }));
  await client.getSnapshot('snap-😀');
  assert.match(sent[0].url, /\/snapshots\/snap-%F0%9F%98%80$/);
});

test('numbers go out exactly as validated, or are refused', async () => {
  const { client, sent } = scripted(() => json({ sandbox_id: 'sbx-1', status: 'running' }));
  for (const [opts, name] of [
    [{ cpus: 1e-9 }, 'cpus'], [{ cpus: 0.0004 }, 'cpus'], [{ cpus: 1.0005 }, 'cpus'],
    [{ memoryMb: 1e15 }, 'memoryMb'], [{ memoryMb: 1.5 }, 'memoryMb'], [{ diskMb: 2 ** 31 }, 'diskMb'],
    [{ timeoutSecs: 1e300 }, 'timeoutSecs'],
  ]) {
    await assert.rejects(client.createSandbox(opts), (err) => err instanceof RangeError && err.message.startsWith(name), name);
  }
  assert.equal(sent.length, 0);
  await client.createSandbox({ cpus: 1.25, memoryMb: 2147483647, diskMb: 20480 });
  const body = JSON.parse(sent[0].body);
  assert.deepEqual(body.resources, { cpus: 1.25, memory_mb: 2147483647, disk_mb: 20480 });
});

test('pollInterval has a floor of 10 ms', async () => {
  const { client, sent } = scripted();
  for (const pollInterval of [1e-9, 0.001, 0.009]) {
    await assert.rejects(client.waitForSnapshot('snap-1', { pollInterval }), RangeError);
    assert.throws(() => client.watchSnapshot('snap-1', { pollInterval }), RangeError);
  }
  assert.equal(sent.length, 0);
});

test('a timestamp a Date cannot hold is undefined, not Invalid Date', async () => {
  for (const createdAt of [1e20, 1e300, '275761-01-01T00:00:00Z']) {
    const { client } = scripted(() => json({ id: 'snap-1', status: 'completed', created_at: createdAt }));
    const snap = await client.getSnapshot('snap-1');
    assert.equal(snap.createdAt, undefined, String(createdAt));
  }
});

test('an apiKey that cannot go into a header is refused by the constructor without being repeated', () => {
  for (const apiKey of ['tl_SECRET\r\nX-Evil: 1', 'tl_SECRET\u0000', 'tl_SÉCRET', 'tl_SECRET_😀']) {
    assert.throws(() => new SandboxClient({ apiUrl: API, apiKey }), (err) => {
      assert.ok(err instanceof TypeError, String(err));
      assert.match(err.message, /^apiKey/);
      assert.doesNotMatch(`${err.message} ${err.stack}`, /SECRET|SÉCRET/);
      return true;
    });
  }
});

test('a DELETE whose first attempt was applied but whose answer was lost resolves', async () => {
  const { client, sent } = scripted((url, init, n) => {
    if (n === 1) throw new TypeError('fetch failed: connection reset');
    return new Response('Snapshot not found: snap-1', { status: 404 });
  });
  await client.deleteSnapshot('snap-1');
  assert.equal(sent.length, 2);
  const direct = scripted(() => new Response('Snapshot not found: snap-1', { status: 404 }));
  await assert.rejects(direct.client.deleteSnapshot('snap-1'), SnapshotNotFoundError);
});

test('a create or a run that failed ambiguously says outcomeUnknown: true and is not repeated', async () => {
  const { client, sent } = scripted(() => { throw new TypeError('fetch failed: socket hang up'); });
  await assert.rejects(client.createSandbox(), (err) => err.outcomeUnknown === true && /outcome unknown/.test(err.message));
  assert.equal(sent.length, 1, 'a create is sent once');
  const server500 = scripted(() => new Response('boom', { status: 500 }));
  await assert.rejects(server500.client.createSandbox(), (err) => err.outcomeUnknown === true);
});

test('snapshotAndWait({ timeout: 1 }) against a server that never answers ends in about a second', async () => {
  // A fetch that never settles unless its signal aborts it.
  const silent = (url, init) => new Promise((resolve, reject) => {
    init.signal.addEventListener('abort', () => reject(init.signal.reason));
  });
  const { client } = scripted(silent);
  const started = Date.now();
  await assert.rejects(client.snapshotAndWait('sbx-1', { timeout: 1 }));
  const took = Date.now() - started;
  assert.ok(took < 5_000, `took ${took} ms, want about 1 s plus a 0.5 s grace per request`);
  const started2 = Date.now();
  await assert.rejects(client.createAndConnect({ startupTimeout: 1 }));
  assert.ok(Date.now() - started2 < 5_000);
});

test('lone surrogates are refused where String.prototype.isWellFormed is missing (Node 18)', async () => {
  const saved = Object.getOwnPropertyDescriptor(String.prototype, 'isWellFormed');
  delete String.prototype.isWellFormed;
  try {
    const { client, sent } = scripted(() => json({ id: 'snap-😀', status: 'completed' }));
    for (const id of ['\uD800snap', 'snap\uDC00', '\uDC00\uD800', 'a\uDBFF']) {
      await assert.rejects(client.getSnapshot(id), (err) => err instanceof TypeError && /unpaired surrogates/.test(err.message), JSON.stringify(id));
    }
    assert.equal(sent.length, 0, 'nothing was sent');
    assert.equal((await client.getSnapshot('snap-😀')).snapshotId, 'snap-😀');
  } finally {
    if (saved) Object.defineProperty(String.prototype, 'isWellFormed', saved);
  }
});

test('aborting createAndConnect while the sandbox starts deletes the sandbox it created', async () => {
  // The call rejects with the signal's reason alone, so the caller has no id to clean up with:
  // the sandbox used to be left running (the startup-timeout path already deleted it).
  const { client, sent } = scripted((url, init) => (init.method === 'DELETE'
    ? new Response(null, { status: 204 })
    : json({ sandbox_id: 'sbx-started', status: 'pending' })));
  const controller = new AbortController();
  const reason = new Error('user cancelled');
  setTimeout(() => controller.abort(reason), 200);
  assert.equal(await client.createAndConnect({ signal: controller.signal }).catch((e) => e), reason);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const deletes = sent.filter((r) => r.method === 'DELETE');
  assert.equal(deletes.length, 1, JSON.stringify(sent.map((r) => r.method)));
  assert.match(deletes[0].url, /\/sandboxes\/sbx-started$/);
});
