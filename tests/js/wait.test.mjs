// The waiter: status callbacks, watchSnapshot, timeouts, failures and cancellation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { SandboxClient, SnapshotFailedError, WaitTimeoutError, SandboxError } from 'tensorlake-snapshots';
import { startServer, ROOT } from './helpers/server.mjs';

let server;
let client;
before(async () => {
  server = await startServer();
  client = SandboxClient.forLocalhost({ apiUrl: server.url });
});
after(async () => { await server.stop(); });

async function slowTiming(fn) {
  await server.timing({ snapshot_local_ready_ms: 400, snapshot_completed_ms: 400 });
  try { return await fn(); } finally { await server.reset(); }
}

test('onStatus is called once per change, in order, ending with the returned snapshot', async () => {
  const sandbox = await client.createAndConnect();
  await slowTiming(async () => {
    const calls = [];
    const result = await client.snapshotAndWait(sandbox.sandboxId, {
      waitUntil: 'completed',
      pollInterval: 0.02,
      onStatus: (s) => calls.push(s),
    });
    assert.deepEqual(calls.map((s) => s.status), ['in_progress', 'local_ready', 'completed']);
    assert.deepEqual(calls.at(-1), result);
    assert.ok(calls.every((s) => s.snapshotId === result.snapshotId));
  });
  await sandbox.terminate();
});

test('the default target is local_ready', async () => {
  const sandbox = await client.createAndConnect();
  await slowTiming(async () => {
    const result = await client.snapshotAndWait(sandbox.sandboxId, { pollInterval: 0.02 });
    assert.equal(result.status, 'local_ready');
  });
  await sandbox.terminate();
});

test('watchSnapshot yields each change and ends at the target', async () => {
  const sandbox = await client.createAndConnect();
  await slowTiming(async () => {
    const { snapshotId } = await client.snapshot(sandbox.sandboxId);
    const seen = [];
    for await (const s of client.watchSnapshot(snapshotId, { waitUntil: 'completed', pollInterval: 0.02 })) {
      seen.push(s.status);
    }
    assert.deepEqual(seen, ['in_progress', 'local_ready', 'completed']);
  });
  await sandbox.terminate();
});

test('breaking out of watchSnapshot stops polling', async () => {
  const sandbox = await client.createAndConnect();
  await slowTiming(async () => {
    const { snapshotId } = await client.snapshot(sandbox.sandboxId);
    const watch = client.watchSnapshot(snapshotId, { waitUntil: 'completed', pollInterval: 0.02 });
    for await (const s of watch) {
      assert.equal(s.status, 'in_progress');
      break;
    }
    await server.clearRequests();
    await new Promise((r) => setTimeout(r, 200));
    const polls = (await server.requests()).filter((r) => r.path.includes(`/snapshots/${snapshotId}`));
    assert.equal(polls.length, 0, 'no poll after break');
    assert.deepEqual(await watch.next(), { value: undefined, done: true });
  });
  await sandbox.terminate();
});

test('the deadline rejects with WaitTimeoutError carrying the last status', async () => {
  const sandbox = await client.createAndConnect();
  await server.timing({ snapshot_local_ready_ms: 10_000 });
  try {
    const { snapshotId } = await client.snapshot(sandbox.sandboxId);
    const err = await client.waitForSnapshot(snapshotId, { timeout: 0.3, pollInterval: 0.05 }).catch((e) => e);
    assert.ok(err instanceof WaitTimeoutError, String(err));
    assert.ok(err instanceof SandboxError);
    assert.equal(err.name, 'WaitTimeoutError');
    assert.equal(err.snapshotId, snapshotId);
    assert.equal(err.lastStatus, 'in_progress');
    assert.equal(err.timeout, 0.3);
    assert.equal(err.waitUntil, 'local_ready');
    assert.match(err.message, /did not reach local_ready within 0\.3s/);
    assert.match(err.traceId, /^[0-9a-f]{32}$/);
  } finally {
    await server.reset();
  }
  await sandbox.terminate();
});

test('a failed snapshot rejects with SnapshotFailedError and the server\'s message', async () => {
  const sandbox = await client.createAndConnect();
  await server.failNextSnapshot(sandbox.sandboxId, 'disk quota exceeded');
  const statuses = [];
  const err = await client.snapshotAndWait(sandbox.sandboxId, { pollInterval: 0.02, onStatus: (s) => statuses.push(s.status) }).catch((e) => e);
  assert.ok(err instanceof SnapshotFailedError, String(err));
  assert.equal(err.name, 'SnapshotFailedError');
  assert.equal(err.responseMessage, 'disk quota exceeded');
  assert.match(err.message, /failed: disk quota exceeded/);
  assert.equal(err.snapshot.status, 'failed');
  assert.equal(err.snapshot.error, 'disk quota exceeded');
  assert.equal(err.snapshotId, err.snapshot.snapshotId);
  assert.equal(statuses.at(-1), 'failed', 'the failure is reported to onStatus too');
  await sandbox.terminate();
});

test('abort mid-wait rejects at once with signal.reason', async () => {
  const sandbox = await client.createAndConnect();
  await server.timing({ snapshot_local_ready_ms: 10_000 });
  try {
    const controller = new AbortController();
    const reason = new Error('user pressed cancel');
    const wait = client.snapshotAndWait(sandbox.sandboxId, {
      pollInterval: 0.05,
      signal: controller.signal,
      onStatus: () => setTimeout(() => controller.abort(reason), 50),
    });
    const err = await wait.catch((e) => e);
    assert.equal(err, reason, 'the rejection is the exact abort reason');
  } finally {
    await server.reset();
  }
  await sandbox.terminate();
});

test('an already-aborted signal rejects without sending anything', async () => {
  await server.clearRequests();
  const signal = AbortSignal.abort(new Error('too late'));
  await assert.rejects(client.snapshotAndWait('sbx-whatever', { signal }), /too late/);
  await assert.rejects(client.getSnapshot('snap-whatever', { signal }), /too late/);
  assert.equal((await server.requests()).filter((r) => !r.path.startsWith('/_admin')).length, 0);
});

test('abort during a slow request cancels the request', async () => {
  await server.fault({ method: 'GET', path: '/v1/namespaces/*/snapshots/*', delay_ms: 5000 });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const started = Date.now();
  const err = await client.getSnapshot('snap-slow', { signal: controller.signal }).catch((e) => e);
  assert.equal(err.name, 'AbortError');
  assert.ok(Date.now() - started < 4000, 'did not wait for the slow response');
  await server.clearFaults();
});

test('a script aborting a long wait exits at once: no timer or request is left behind', async () => {
  const sandbox = await client.createAndConnect();
  await server.timing({ snapshot_local_ready_ms: 60_000 });
  try {
    const script = `
      const { SandboxClient } = require('tensorlake-snapshots');
      const client = SandboxClient.forLocalhost({ apiUrl: process.argv[1] });
      const controller = new AbortController();
      client.snapshotAndWait(process.argv[2], { pollInterval: 5, timeout: 120, signal: controller.signal })
        .then(() => console.log('resolved'), (e) => console.log('rejected:' + e.name));
      setTimeout(() => controller.abort(), 300);
    `;
    const started = Date.now();
    const child = spawn(process.execPath, ['-e', script, server.url, sandbox.sandboxId], { cwd: ROOT });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const code = await new Promise((r) => child.on('exit', r));
    const elapsed = Date.now() - started;
    assert.equal(out.trim(), 'rejected:AbortError');
    assert.equal(code, 0);
    // A leaked 5 s poll timer or 120 s deadline would hold the process open far longer.
    assert.ok(elapsed < 4000, `the process exited ${elapsed} ms after start`);
  } finally {
    await server.reset();
  }
  await sandbox.terminate();
});
