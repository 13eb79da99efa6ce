// Retries, Retry-After, timeouts and the no-duplicate snapshot rule, driven by the local server's
// fault injection and checked against the server's own request log.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxClient, RemoteAPIError, SandboxConnectionError, SandboxError } from 'tensorlake-snapshots';
import { startServer } from './helpers/server.mjs';

let server;
let client;
let sandbox;
before(async () => {
  server = await startServer();
  client = SandboxClient.forLocalhost({ apiUrl: server.url });
  sandbox = await client.createAndConnect();
});
after(async () => { await server.stop(); });
beforeEach(async () => {
  await server.reset();
});

const SNAPSHOT_GET = '/v1/namespaces/default/snapshots/*';
const snapshotPost = () => `/v1/namespaces/default/sandboxes/${sandbox.sandboxId}/snapshot`;

async function logged(method, pathPart) {
  return (await server.requests()).filter((r) => r.method === method && r.path.includes(pathPart));
}

async function aSnapshot() {
  const snap = await client.snapshotAndWait(sandbox.sandboxId, { pollInterval: 0.02 });
  await server.clearRequests();
  return snap;
}

test('GET retries 502, 503, 504 and a dropped connection, then succeeds', async () => {
  const snap = await aSnapshot();
  for (const fault of [{ status: 502 }, { status: 503 }, { status: 504 }, { drop: true }]) {
    await server.clearRequests();
    await server.fault({ method: 'GET', path: SNAPSHOT_GET, count: 2, ...fault });
    const got = await client.getSnapshot(snap.snapshotId);
    assert.equal(got.snapshotId, snap.snapshotId);
    const gets = await logged('GET', `/snapshots/${snap.snapshotId}`);
    assert.equal(gets.length, 3, `${JSON.stringify(fault)}: two failures, one success`);
    assert.equal(new Set(gets.map((r) => r.traceparent)).size, 3, 'each attempt has its own traceparent');
  }
});

test('429 with Retry-After is honoured before the retry', async () => {
  const snap = await aSnapshot();
  await server.fault({ method: 'GET', path: SNAPSHOT_GET, status: 429, retry_after: '1' });
  const started = Date.now();
  await client.getSnapshot(snap.snapshotId);
  assert.ok(Date.now() - started >= 950, 'waited for Retry-After: 1');
  assert.equal((await logged('GET', `/snapshots/${snap.snapshotId}`)).length, 2);
});

test('Retry-After as an HTTP date is honoured too', async () => {
  const snap = await aSnapshot();
  const when = new Date(Date.now() + 2000).toUTCString();
  await server.fault({ method: 'GET', path: SNAPSHOT_GET, status: 503, retry_after: when });
  const started = Date.now();
  await client.getSnapshot(snap.snapshotId);
  assert.ok(Date.now() - started >= 900, 'waited until the date (second resolution)');
});

test('retries stop at maxRetries and report the last failure', async () => {
  const snap = await aSnapshot();
  const strict = SandboxClient.forLocalhost({ apiUrl: server.url, maxRetries: 1 });
  await server.fault({ method: 'GET', path: SNAPSHOT_GET, count: 5, status: 503, body: 'overloaded' });
  const err = await strict.getSnapshot(snap.snapshotId).catch((e) => e);
  assert.ok(err instanceof RemoteAPIError);
  assert.equal(err.statusCode, 503);
  assert.equal(err.responseMessage, 'overloaded');
  assert.equal(err.retryable, true);
  assert.equal((await logged('GET', `/snapshots/${snap.snapshotId}`)).length, 2);
});

test('500 and 4xx are not retried', async () => {
  const snap = await aSnapshot();
  await server.fault({ method: 'GET', path: SNAPSHOT_GET, status: 500, body: 'boom' });
  const err = await client.getSnapshot(snap.snapshotId).catch((e) => e);
  assert.equal(err.statusCode, 500);
  assert.equal(err.retryable, false);
  assert.equal((await logged('GET', `/snapshots/${snap.snapshotId}`)).length, 1);
});

test('requestTimeout bounds each request', async () => {
  const snap = await aSnapshot();
  const impatient = SandboxClient.forLocalhost({ apiUrl: server.url, requestTimeout: 0.3, maxRetries: 0 });
  await server.fault({ method: 'GET', path: SNAPSHOT_GET, delay_ms: 3000 });
  const started = Date.now();
  const err = await impatient.getSnapshot(snap.snapshotId).catch((e) => e);
  assert.ok(err instanceof SandboxConnectionError, String(err));
  assert.equal(err.timedOut, true);
  assert.ok(Date.now() - started < 2500);
});

test('truncated and non-JSON bodies are typed errors, not crashes', async () => {
  const snap = await aSnapshot();
  await server.fault({ method: 'GET', path: SNAPSHOT_GET, truncate: true });
  const truncated = await client.getSnapshot(snap.snapshotId).catch((e) => e);
  assert.ok(truncated instanceof SandboxError && !(truncated instanceof RemoteAPIError), String(truncated));
  assert.equal(truncated.code, 'INVALID_RESPONSE');
  assert.match(truncated.message, /expected JSON/);

  await server.fault({ method: 'GET', path: SNAPSHOT_GET, non_json: true });
  const html = await client.getSnapshot(snap.snapshotId).catch((e) => e);
  assert.equal(html.code, 'INVALID_RESPONSE');
  assert.match(html.message, /text\/html/);

  await server.fault({ method: 'GET', path: SNAPSHOT_GET, status: 502, non_json: true, count: 4 });
  const page = await client.getSnapshot(snap.snapshotId).catch((e) => e);
  assert.ok(page instanceof RemoteAPIError);
  assert.equal(page.statusCode, 502);
});

test('a snapshot POST is retried on 429 only, and creates one snapshot', async () => {
  await server.fault({ method: 'POST', path: snapshotPost(), status: 429, retry_after: '0' });
  const created = await client.snapshot(sandbox.sandboxId);
  assert.equal((await logged('POST', '/snapshot')).length, 2);
  await client.waitForSnapshot(created.snapshotId, { pollInterval: 0.02 });
});

for (const [label, fault] of [
  ['a 502 after the server created it', { status: 502, after: true }],
  ['a connection dropped after the server created it', { drop: true, after: true }],
]) {
  test(`no duplicate snapshot after ${label}: the created one is returned`, async () => {
    const before = await client.listSnapshots({ sandboxId: sandbox.sandboxId });
    await server.clearRequests();
    await server.fault({ method: 'POST', path: snapshotPost(), ...fault });
    const created = await client.snapshot(sandbox.sandboxId);
    assert.equal((await logged('POST', '/snapshot')).length, 1, 'the POST was sent once');
    const afterList = await client.listSnapshots({ sandboxId: sandbox.sandboxId });
    assert.equal(afterList.length, before.length + 1, 'exactly one new snapshot');
    assert.ok(afterList.some((s) => s.snapshotId === created.snapshotId));
    await client.waitForSnapshot(created.snapshotId, { pollInterval: 0.02 });
  });
}

test('an ambiguous failure that created nothing says the outcome is unknown', async () => {
  const before = await client.listSnapshots({ sandboxId: sandbox.sandboxId });
  await server.fault({ method: 'POST', path: snapshotPost(), status: 503, body: 'upstream gone' });
  const err = await client.snapshot(sandbox.sandboxId).catch((e) => e);
  assert.ok(err instanceof RemoteAPIError, String(err));
  assert.equal(err.outcomeUnknown, true);
  assert.match(err.message, /outcome unknown/);
  assert.equal((await logged('POST', '/snapshot')).length, 1, 'never re-sent');
  assert.equal((await client.listSnapshots({ sandboxId: sandbox.sandboxId })).length, before.length);
});

test('a snapshot POST that times out is reported as outcome unknown, never re-sent', async () => {
  await server.clearRequests();
  const before = await client.listSnapshots({ sandboxId: sandbox.sandboxId });
  await server.fault({ method: 'POST', path: snapshotPost(), delay_ms: 1000, after: true });
  const impatient = SandboxClient.forLocalhost({ apiUrl: server.url, requestTimeout: 0.3 });
  const err = await impatient.snapshot(sandbox.sandboxId).catch((e) => e);
  assert.ok(err instanceof SandboxConnectionError, String(err));
  assert.equal(err.timedOut, true);
  assert.equal(err.outcomeUnknown, true);
  assert.match(err.message, /outcome unknown/);
  // The server drops a handler whose client went away, so the cancelled POST may not be logged;
  // what matters is that it was never sent a second time.
  await new Promise((r) => setTimeout(r, 1200));
  assert.ok((await logged('POST', '/snapshot')).length <= 1, 'never re-sent');
  assert.ok((await client.listSnapshots({ sandboxId: sandbox.sandboxId })).length <= before.length + 1);
});

test('a retryable failure while polling does not end the wait', async () => {
  await server.timing({ snapshot_local_ready_ms: 300 });
  await server.fault({ method: 'GET', path: SNAPSHOT_GET, status: 503, count: 3, retry_after: '0' });
  const strict = SandboxClient.forLocalhost({ apiUrl: server.url, maxRetries: 0 });
  const result = await strict.snapshotAndWait(sandbox.sandboxId, { pollInterval: 0.05 });
  assert.equal(result.status, 'local_ready');
});

test('a connection that could not be made sent nothing: a create goes again, and its failure is definite', async () => {
  // Nobody listens on a port just freed: the default Node transport's connection is refused.
  const probe = (await import('node:net')).createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const nobody = SandboxClient.forLocalhost({ apiUrl: `http://127.0.0.1:${port}`, maxRetries: 1 });
  for (const call of [() => nobody.snapshot('sbx-1'), () => nobody.createSandbox(), () => nobody.getSnapshot('snap-1')]) {
    const err = await call().catch((e) => e);
    assert.ok(err instanceof SandboxConnectionError, String(err));
    assert.match(err.message, /ECONNREFUSED/);
    assert.doesNotMatch(err.message, /outcome unknown/);
    assert.ok(!err.outcomeUnknown, 'nothing was sent');
  }

  // Through a fetch: a refusal, then the real server. The create is sent again and succeeds.
  let refusals = 0;
  const flaky = SandboxClient.forLocalhost({
    apiUrl: server.url,
    fetch: (url, init) => (refusals++ === 0
      ? Promise.reject(new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }))
      : fetch(url, init)),
  });
  const created = await flaky.snapshot(sandbox.sandboxId);
  assert.equal(refusals, 2);
  assert.equal((await logged('POST', '/snapshot')).length, 1, 'sent once it could be');
  await client.waitForSnapshot(created.snapshotId, { pollInterval: 0.02 });
});
