// The documented workflow, run once through `import` and once through `require`, so both entry
// points of the package are shown to work end to end against a real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './helpers/server.mjs';

export function workflowTests(lib, via) {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server.stop(); });

  test(`${via}: create, write, snapshot, restore with 4 CPUs / 2048 MB, read back, clean up`, async () => {
    const { SandboxClient, SnapshotNotFoundError, RemoteAPIError, SandboxError } = lib;
    const client = SandboxClient.forLocalhost({ apiUrl: server.url });

    const sandbox = await client.createAndConnect({ cpus: 1, memoryMb: 1024 });
    assert.match(sandbox.sandboxId, /\S/);
    const write = await sandbox.commands.run("mkdir -p /data && printf 'a,b\\n1,2\\n' > /data/output.csv");
    assert.deepEqual(write, { exitCode: 0, stdout: '', stderr: '' });

    const seen = [];
    const snapshot = await client.snapshotAndWait(sandbox.sandboxId, { pollInterval: 0.02, onStatus: (s) => seen.push(s.status) });
    assert.ok(['local_ready', 'completed'].includes(snapshot.status), snapshot.status);
    assert.equal(seen.at(-1), snapshot.status);
    assert.equal(snapshot.sandboxId, sandbox.sandboxId);
    assert.equal(snapshot.namespace, 'default');
    assert.equal(snapshot.snapshotType, 'filesystem');
    assert.ok(snapshot.createdAt instanceof Date && Math.abs(snapshot.createdAt - Date.now()) < 60_000);
    assert.ok(snapshot.sizeBytes > 0);

    const fetched = await client.getSnapshot(snapshot.snapshotId);
    assert.equal(fetched.snapshotId, snapshot.snapshotId);
    const listed = await client.listSnapshots();
    assert.ok(listed.some((s) => s.snapshotId === snapshot.snapshotId && s.sizeBytes === fetched.sizeBytes));

    const restored = await client.createAndConnect({ snapshotId: snapshot.snapshotId, cpus: 4, memoryMb: 2048 });
    assert.notEqual(restored.sandboxId, sandbox.sandboxId);
    const info = await restored.info();
    assert.equal(info.status, 'running');
    assert.deepEqual([info.resources.cpus, info.resources.memoryMb], [4, 2048]);
    const cat = await restored.commands.run('cat /data/output.csv');
    assert.equal(cat.exitCode, 0);
    assert.equal(cat.stdout, 'a,b\n1,2');
    const bytes = await restored.readFile('/data/output.csv');
    assert.ok(bytes instanceof Uint8Array);
    assert.equal(new TextDecoder().decode(bytes), 'a,b\n1,2\n');

    await client.deleteSnapshot(snapshot.snapshotId);
    const gone = await client.getSnapshot(snapshot.snapshotId).catch((e) => e);
    assert.ok(gone instanceof SnapshotNotFoundError);
    assert.ok(gone instanceof RemoteAPIError && gone instanceof SandboxError && gone instanceof Error);
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.snapshotId, snapshot.snapshotId);

    await sandbox.terminate();
    await restored.terminate();
    const remaining = (await client.listSandboxes()).filter((s) => [sandbox.sandboxId, restored.sandboxId].includes(s.sandboxId) && s.status !== 'terminated');
    assert.deepEqual(remaining, []);
  });
}
