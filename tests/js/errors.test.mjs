// Error classes and their fields, argument errors (rejected before any request), and secrets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import {
  SandboxClient,
  SandboxError,
  RemoteAPIError,
  SandboxNotFoundError,
  SnapshotNotFoundError,
  SandboxConnectionError,
  SnapshotFailedError,
  WaitTimeoutError,
} from 'tensorlake-snapshots';
import { startServer } from './helpers/server.mjs';

let server;
let client;
before(async () => {
  server = await startServer();
  client = SandboxClient.forLocalhost({ apiUrl: server.url });
});
after(async () => { await server.stop(); });

const apiRequests = async () => (await server.requests()).filter((r) => !r.path.startsWith('/_admin'));

test('the classes form the documented hierarchy', () => {
  const chain = (C) => { const names = []; for (let p = C.prototype; p; p = Object.getPrototypeOf(p)) names.push(p.constructor.name); return names; };
  assert.deepEqual(chain(SandboxNotFoundError).slice(0, 4), ['SandboxNotFoundError', 'RemoteAPIError', 'SandboxError', 'Error']);
  assert.deepEqual(chain(SnapshotNotFoundError).slice(0, 4), ['SnapshotNotFoundError', 'RemoteAPIError', 'SandboxError', 'Error']);
  for (const C of [SandboxConnectionError, SnapshotFailedError, WaitTimeoutError]) {
    assert.deepEqual(chain(C).slice(1, 3), ['SandboxError', 'Error']);
  }
});

test('RemoteAPIError carries status, message, retryability and the trace id the server saw', async () => {
  const sandbox = await client.createAndConnect();
  await server.timing({ snapshot_local_ready_ms: 2000 });
  await client.snapshot(sandbox.sandboxId);
  await server.clearRequests();
  const err = await client.snapshot(sandbox.sandboxId).catch((e) => e);
  const logged = (await apiRequests()).find((r) => r.method === 'POST');
  await server.reset();
  assert.ok(err instanceof RemoteAPIError, String(err));
  assert.equal(err.name, 'RemoteAPIError');
  assert.equal(err.statusCode, 400);
  assert.match(err.responseMessage, /already being snapshotted/);
  assert.equal(err.retryable, false);
  assert.equal(err.outcomeUnknown, false);
  assert.match(err.message, /^API error \(status 400\) on POST \/v1\/namespaces\/default\/sandboxes\/.+\/snapshot: /);
  assert.match(err.traceId, /^[0-9a-f]{32}$/);
  assert.ok(logged.traceparent.includes(err.traceId), 'the traceId is the one the server logged');
  assert.ok(err.stack.includes('RemoteAPIError'));
  await sandbox.terminate();
});

test('not-found errors name what was missing', async () => {
  const snap = await client.getSnapshot('snap-missing').catch((e) => e);
  assert.ok(snap instanceof SnapshotNotFoundError);
  assert.equal(snap.snapshotId, 'snap-missing');
  assert.equal(snap.statusCode, 404);
  assert.equal(snap.message, 'Snapshot not found: snap-missing');
  for (const call of [() => client.getSandbox('sbx-missing'), () => client.snapshot('sbx-missing'), () => client.deleteSandbox('sbx-missing')]) {
    const err = await call().catch((e) => e);
    assert.ok(err instanceof SandboxNotFoundError, String(err));
    assert.equal(err.sandboxId, 'sbx-missing');
    assert.equal(err.statusCode, 404);
  }
  const restore = await client.createSandbox({ snapshotId: 'snap-missing' }).catch((e) => e);
  assert.ok(restore instanceof SnapshotNotFoundError, String(restore));
  assert.equal((await client.deleteSnapshot('snap-missing').catch((e) => e)).snapshotId, 'snap-missing');
});

test('SandboxConnectionError keeps the underlying error as cause', async () => {
  const nowhere = SandboxClient.forLocalhost({ apiUrl: 'http://127.0.0.1:9', maxRetries: 0 });
  const err = await nowhere.getSnapshot('snap-1').catch((e) => e);
  assert.ok(err instanceof SandboxConnectionError, String(err));
  assert.ok(err.cause instanceof Error);
  assert.equal(err.timedOut, false);
  assert.match(err.traceId, /^[0-9a-f]{32}$/);
  assert.match(err.message, /^Connection error on GET \/v1\/namespaces\/default\/snapshots\/snap-1: /);
});

test('ids are percent-encoded: an id cannot reach another route', async () => {
  await server.clearRequests();
  const err = await client.getSnapshot('../sandboxes').catch((e) => e);
  assert.ok(err instanceof SnapshotNotFoundError, String(err));
  const [req] = await apiRequests();
  assert.equal(req.path, '/v1/namespaces/default/snapshots/..%2Fsandboxes');
});

test('bad arguments reject with TypeError or RangeError naming the parameter, before any request', async () => {
  await server.clearRequests();
  const cases = [
    [() => client.getSnapshot(''), TypeError, /snapshotId/],
    [() => client.getSnapshot(42), TypeError, /snapshotId/],
    [() => client.getSnapshot(), TypeError, /snapshotId/],
    [() => client.deleteSnapshot('  '), TypeError, /snapshotId/],
    [() => client.snapshot(''), TypeError, /sandboxId/],
    [() => client.snapshot('sbx', { snapshotType: 'disk' }), RangeError, /snapshotType/],
    [() => client.snapshotAndWait('sbx', { timeout: -1 }), RangeError, /timeout/],
    [() => client.snapshotAndWait('sbx', { timeout: NaN }), RangeError, /timeout/],
    [() => client.snapshotAndWait('sbx', { timeout: Infinity }), RangeError, /timeout/],
    [() => client.snapshotAndWait('sbx', { timeout: '5' }), TypeError, /timeout/],
    [() => client.snapshotAndWait('sbx', { pollInterval: 0 }), RangeError, /pollInterval/],
    [() => client.snapshotAndWait('sbx', { waitUntil: 'done' }), RangeError, /waitUntil/],
    [() => client.snapshotAndWait('sbx', { onStatus: 'yes' }), TypeError, /onStatus/],
    [() => client.waitForSnapshot('snap', { signal: {} }), TypeError, /signal/],
    [() => client.createSandbox({ cpus: 0 }), RangeError, /cpus/],
    [() => client.createSandbox({ cpus: -1 }), RangeError, /cpus/],
    [() => client.createSandbox({ memoryMb: 1.5 }), RangeError, /memoryMb/],
    [() => client.createSandbox({ entrypoint: 'sh' }), TypeError, /entrypoint/],
    [() => client.createAndConnect({ startupTimeout: -5 }), RangeError, /startupTimeout/],
    [() => client.listSnapshots('sbx'), TypeError, /options/],
  ];
  for (const [call, Type, pattern] of cases) {
    const promise = call();
    assert.ok(promise instanceof Promise, `${call}: async methods reject rather than throw`);
    const err = await promise.catch((e) => e);
    assert.ok(err instanceof Type, `${call}: ${err}`);
    assert.match(err.message, pattern, String(call));
  }
  assert.throws(() => client.watchSnapshot(''), TypeError);
  assert.throws(() => client.watchSnapshot('snap', { pollInterval: -1 }), RangeError);
  assert.deepEqual(await apiRequests(), [], 'no request was sent');
});

test('bad client options throw at construction, naming the option', () => {
  assert.throws(() => new SandboxClient({ apiUrl: 'not a url' }), (e) => e instanceof TypeError && /apiUrl/.test(e.message));
  assert.throws(() => new SandboxClient({ apiUrl: 'ftp://x' }), /apiUrl/);
  assert.throws(() => new SandboxClient({ requestTimeout: 0 }), (e) => e instanceof RangeError && /requestTimeout/.test(e.message));
  assert.throws(() => new SandboxClient({ maxRetries: 1.5 }), (e) => e instanceof RangeError && /maxRetries/.test(e.message));
  assert.throws(() => new SandboxClient({ organizationId: 'org' }), /projectId/);
  assert.throws(() => new SandboxClient({ apiKey: 'k', tokenProvider: () => 't' }), /tokenProvider/);
  assert.throws(() => new SandboxClient({ fetch: 'fetch' }), (e) => e instanceof TypeError && /fetch/.test(e.message));
  assert.throws(() => new SandboxClient('http://x'), /options/);
});

test('environment variables configure a client when options are absent', async () => {
  const saved = { ...process.env };
  try {
    process.env.TENSORLAKE_API_URL = server.url;
    process.env.INDEXIFY_NAMESPACE = 'from-env';
    const c = new SandboxClient();
    assert.deepEqual(JSON.parse(JSON.stringify(c)), { apiUrl: server.url, namespace: 'from-env', credentials: 'none' });
    await server.clearRequests();
    await c.listSnapshots();
    assert.equal((await apiRequests())[0].path, '/v1/namespaces/from-env/snapshots');
  } finally {
    process.env = saved;
  }
});

test('a custom fetch is used instead of the global one', async () => {
  const urls = [];
  const c = SandboxClient.forLocalhost({ apiUrl: server.url, fetch: (url, init) => { urls.push([init.method, url]); return fetch(url, init); } });
  await c.listSnapshots();
  assert.deepEqual(urls, [['GET', `${server.url}/v1/namespaces/default/snapshots`]]);
});

test('the API key never appears in errors, logs, strings or JSON', async () => {
  const KEY = 'tl_apiKey_TOP_SECRET_1234567890';
  const guarded = await startServer({ args: ['--api-key', KEY] });
  try {
    const good = new SandboxClient({ apiUrl: guarded.url, apiKey: KEY });
    const sandbox = await good.createAndConnect();
    assert.equal((await sandbox.commands.run('echo ok')).stdout, 'ok');

    const wrong = new SandboxClient({ apiUrl: guarded.url, apiKey: 'tl_apiKey_WRONG_987654321' });
    const unauthorized = await wrong.listSnapshots().catch((e) => e);
    assert.ok(unauthorized instanceof RemoteAPIError);
    assert.equal(unauthorized.statusCode, 401);

    // A misbehaving server that echoes the credential back into an error body.
    await guarded.fault({ method: 'GET', path: '/v1/namespaces/*/snapshots/*', status: 400, body: `bad header Authorization: Bearer ${KEY}` });
    const echoed = await good.getSnapshot('snap-x').catch((e) => e);
    assert.match(echoed.responseMessage, /\[redacted\]/);

    const anon = SandboxClient.forLocalhost({ apiUrl: guarded.url });
    const missing = await anon.listSnapshots().catch((e) => e);
    assert.equal(missing.statusCode, 401);

    const tokenClient = new SandboxClient({ apiUrl: guarded.url, tokenProvider: async () => KEY });
    assert.ok(Array.isArray(await tokenClient.listSnapshots()), 'tokenProvider supplies the bearer token');
    const failingProvider = new SandboxClient({ apiUrl: guarded.url, maxRetries: 0, tokenProvider: () => { throw new Error('vault unreachable'); } });
    const providerErr = await failingProvider.listSnapshots().catch((e) => e);
    // A provider failure is a credentials problem, typed and not retried, not a network error.
    assert.ok(providerErr instanceof SandboxError && !(providerErr instanceof SandboxConnectionError));
    assert.equal(providerErr.code, 'CREDENTIALS');
    assert.match(providerErr.message, /tokenProvider failed: Error: vault unreachable/);

    const texts = [unauthorized, echoed, missing, providerErr].flatMap((e) => [
      e.message, e.stack, String(e), JSON.stringify(e), inspect(e, { depth: 10, showHidden: true }),
    ]);
    texts.push(String(good), JSON.stringify(good), inspect(good, { depth: 10, showHidden: true }));
    texts.push(String(tokenClient), JSON.stringify(tokenClient));
    for (const text of texts) assert.ok(!text.includes(KEY), `leaked in: ${text.slice(0, 200)}`);
    await sandbox.terminate();
    assert.ok(!guarded.log().includes(KEY), 'the server log never shows the key');
    assert.ok(!guarded.log().includes('WRONG_987654321'));
  } finally {
    await guarded.stop();
  }
});
