// Every method of the public API against a real local server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { SandboxClient, Sandbox, RemoteAPIError, SandboxNotFoundError } from 'tensorlake-snapshots';
import { startServer } from './helpers/server.mjs';

let server;
let client;
before(async () => {
  server = await startServer();
  client = SandboxClient.forLocalhost({ apiUrl: server.url });
});
after(async () => { await server.stop(); });

test('snapshot() returns at once; waitForSnapshot() follows it to completed', async () => {
  const sandbox = await client.createAndConnect();
  const started = await client.snapshot(sandbox.sandboxId);
  assert.deepEqual(Object.keys(started).sort(), ['snapshotId', 'status']);
  assert.equal(started.status, 'in_progress');
  const done = await client.waitForSnapshot(started.snapshotId, { waitUntil: 'completed', pollInterval: 0.02 });
  assert.equal(done.status, 'completed');
  assert.equal(done.snapshotId, started.snapshotId);
  assert.match(done.snapshotUri, /\S/, 'a completed snapshot has a durable URI');
  await sandbox.terminate();
});

test('sandbox lifecycle: createSandbox, getSandbox, listSandboxes, connect, deleteSandbox', async () => {
  const info = await client.createSandbox({ image: 'tensorlake/ubuntu-minimal', cpus: 2, memoryMb: 512, name: 'api-test' });
  assert.equal(info.status, 'running');
  assert.match(info.sandboxUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  const got = await client.getSandbox(info.sandboxId);
  assert.equal(got.sandboxId, info.sandboxId);
  assert.equal(got.namespace, 'default');
  assert.deepEqual([got.resources.cpus, got.resources.memoryMb], [2, 512]);
  assert.ok(got.resources.diskMb > 0);
  assert.ok(got.createdAt instanceof Date);
  assert.equal(got.name, 'api-test');
  assert.ok((await client.listSandboxes()).some((s) => s.sandboxId === info.sandboxId));

  const handle = await client.connect(info.sandboxId);
  assert.ok(handle instanceof Sandbox);
  assert.equal(handle.sandboxId, info.sandboxId);
  assert.equal((await handle.commands.run('echo connected')).stdout, 'connected');

  await client.deleteSandbox(info.sandboxId);
  const after = await client.getSandbox(info.sandboxId).then((s) => s.status, (e) => e);
  assert.ok(after === 'terminated' || after instanceof SandboxNotFoundError, String(after));
  await assert.rejects(client.connect('sbx-does-not-exist'), SandboxNotFoundError);
});

test('run(): program, args, env, working directory, exit code, stderr, timeout', async () => {
  const sandbox = await client.createAndConnect();
  const out = await sandbox.run('sh', {
    args: ['-c', 'echo "$GREETING from $(pwd)"; echo oops >&2; exit 7'],
    env: { GREETING: 'hello' },
    workingDir: '/tmp',
  });
  assert.deepEqual(out, { exitCode: 7, stdout: 'hello from /tmp', stderr: 'oops' });
  const multi = await sandbox.commands.run('printf "1\\n2\\n3\\n"');
  assert.equal(multi.stdout, '1\n2\n3');
  const killed = await sandbox.commands.run('sleep 30', { timeout: 0.5 });
  assert.notEqual(killed.exitCode, 0, 'the sandbox kills a command at its timeout');
  await sandbox.terminate();
});

test('files: writeFile (string and bytes), readFile, listDirectory, deleteFile', async () => {
  const sandbox = await client.createAndConnect();
  await sandbox.writeFile('/work/notes/hello.txt', 'héllo\n');
  const binary = new Uint8Array([0, 1, 2, 250, 255]);
  await sandbox.writeFile('/work/blob.bin', binary);
  await sandbox.writeFile('/work/buf.bin', binary.buffer);
  assert.equal(new TextDecoder().decode(await sandbox.readFile('/work/notes/hello.txt')), 'héllo\n');
  assert.deepEqual(await sandbox.readFile('/work/blob.bin'), binary);
  assert.deepEqual(await sandbox.readFile('/work/buf.bin'), binary);
  const entries = await sandbox.listDirectory('/work');
  const byName = Object.fromEntries(entries.map((e) => [e.name, e]));
  assert.equal(byName.notes.isDir, true);
  assert.equal(byName['blob.bin'].isDir, false);
  assert.equal(byName['blob.bin'].size, 5);
  assert.ok(byName['blob.bin'].modifiedAt instanceof Date);
  await sandbox.deleteFile('/work/blob.bin');
  const missing = await sandbox.readFile('/work/blob.bin').catch((e) => e);
  assert.ok(missing instanceof RemoteAPIError);
  assert.equal(missing.statusCode, 404);
  assert.equal((await sandbox.commands.run('cat /work/notes/hello.txt')).stdout, 'héllo', 'files written through the API are the files commands see');
  await sandbox.terminate();
});

test('sandbox.snapshot() and sandbox.snapshotAndWait() are bound to the sandbox', async () => {
  const sandbox = await client.createAndConnect();
  const started = await sandbox.snapshot({ snapshotType: 'filesystem' });
  assert.equal(started.status, 'in_progress');
  await client.waitForSnapshot(started.snapshotId, { pollInterval: 0.02 });
  const waited = await sandbox.snapshotAndWait({ pollInterval: 0.02, waitUntil: 'completed' });
  assert.equal(waited.status, 'completed');
  assert.equal(waited.sandboxId, sandbox.sandboxId);
  const mine = await client.listSnapshots({ sandboxId: sandbox.sandboxId });
  assert.deepEqual(mine.map((s) => s.snapshotId).sort(), [started.snapshotId, waited.snapshotId].sort());
  await sandbox.terminate();
});

test('a restore without resources inherits them from the snapshot', async () => {
  const sandbox = await client.createAndConnect({ cpus: 2, memoryMb: 3072 });
  const snap = await sandbox.snapshotAndWait({ pollInterval: 0.02 });
  const restored = await client.createSandbox({ snapshotId: snap.snapshotId });
  const info = await client.getSandbox(restored.sandboxId);
  assert.deepEqual([info.resources.cpus, info.resources.memoryMb], [2, 3072]);
  await client.deleteSandbox(restored.sandboxId);
  await sandbox.terminate();
});

test('a memory snapshot restored with other resources is refused with the reason', async () => {
  const sandbox = await client.createAndConnect({ cpus: 1, memoryMb: 1024 });
  const snap = await sandbox.snapshotAndWait({ snapshotType: 'memory', pollInterval: 0.02 });
  assert.equal(snap.snapshotType, 'memory');
  const err = await client.createAndConnect({ snapshotId: snap.snapshotId, cpus: 4, memoryMb: 2048 }).catch((e) => e);
  assert.ok(err instanceof RemoteAPIError, String(err));
  assert.equal(err.statusCode, 400);
  assert.match(err.responseMessage, /memory/i);
  const same = await client.createAndConnect({ snapshotId: snap.snapshotId });
  assert.equal((await same.info()).resources.memoryMb, 1024);
  await same.terminate();
  await sandbox.terminate();
});

test('listSnapshots decodes every snapshot and filters by sandbox', async () => {
  const sandbox = await client.createAndConnect();
  const snap = await sandbox.snapshotAndWait({ pollInterval: 0.02, waitUntil: 'completed' });
  await server.seedSnapshots(snap.snapshotId, 25);
  const list = await client.listSnapshots({ sandboxId: sandbox.sandboxId });
  assert.equal(list.length, 26);
  for (const s of list) {
    assert.equal(typeof s.snapshotId, 'string');
    assert.equal(s.status, 'completed');
    assert.ok(s.createdAt instanceof Date);
  }
  await sandbox.terminate();
});

test('a client describes itself without credentials', () => {
  const c = new SandboxClient({ apiUrl: server.url, apiKey: 'tl_apiKey_SHOULD_NOT_SHOW', namespace: 'team-a' });
  assert.equal(String(c), `SandboxClient(${server.url}, namespace team-a)`);
  assert.deepEqual(JSON.parse(JSON.stringify(c)), { apiUrl: server.url, namespace: 'team-a', credentials: 'apiKey ([redacted])' });
  assert.ok(!inspect(c, { depth: 5, showHidden: true }).includes('SHOULD_NOT_SHOW'));
});
