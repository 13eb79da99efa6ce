// The runtime-matrix smoke run: the documented workflow and the error and abort contracts, through
// whatever entry point the runtime picked. Plain ES2022, no Node APIs, so the same file runs in
// Node, Bun, Deno and a browser page. Returns a report; throws on the first failed step.

function check(cond, message) {
  if (!cond) throw new Error(`smoke: ${message}`);
}

/**
 * @param {Record<string, any>} lib the package's exports, as the runtime loaded them
 * @param {string} apiUrl the local server
 * @param {string} tag a per-run marker written into the sandbox and read back after the restore
 */
export async function smoke(lib, apiUrl, tag) {
  const steps = [];
  const step = (name) => steps.push(name);
  const { SandboxClient, SandboxError, RemoteAPIError, SnapshotNotFoundError } = lib;
  check(typeof SandboxClient === 'function', 'SandboxClient is exported');
  const client = SandboxClient.forLocalhost({ apiUrl });

  // create, run a command
  const sandbox = await client.createAndConnect();
  check(/\S/.test(sandbox.sandboxId), 'createAndConnect returns a sandbox id');
  step('create');
  const wrote = await sandbox.commands.run(`mkdir -p /data && echo ${tag} > /data/smoke.txt && cat /data/smoke.txt`);
  check(wrote.exitCode === 0 && wrote.stdout === tag, `command output ${JSON.stringify(wrote)}`);
  step('run');

  // snapshot and wait
  const statuses = [];
  const snap = await client.snapshotAndWait(sandbox.sandboxId, { pollInterval: 0.02, onStatus: (s) => statuses.push(s.status) });
  check(snap.status === 'local_ready' || snap.status === 'completed', `snapshot status ${snap.status}`);
  check(snap.sandboxId === sandbox.sandboxId, 'the snapshot is of the sandbox');
  check(snap.createdAt instanceof Date && Number.isFinite(snap.createdAt.getTime()), 'createdAt is a Date');
  check(statuses.at(-1) === snap.status, 'onStatus saw the final status');
  step('snapshotAndWait');

  // list
  const listed = await client.listSnapshots();
  check(Array.isArray(listed) && listed.some((s) => s.snapshotId === snap.snapshotId), 'listSnapshots includes the snapshot');
  step('list');

  // restore and read the file back
  const restored = await client.createAndConnect({ snapshotId: snap.snapshotId });
  check(restored.sandboxId !== sandbox.sandboxId, 'the restore is a new sandbox');
  const bytes = await restored.readFile('/data/smoke.txt');
  check(bytes instanceof Uint8Array, 'readFile returns a Uint8Array');
  const text = new TextDecoder().decode(bytes);
  check(text === `${tag}\n`, `restored file reads ${JSON.stringify(text)}`);
  step('restore');

  // the error classes
  const missing = await client.getSnapshot('snap-does-not-exist').then(() => null, (e) => e);
  check(missing instanceof SnapshotNotFoundError, `a missing snapshot rejects with SnapshotNotFoundError, got ${missing?.name}: ${missing?.message}`);
  check(missing instanceof RemoteAPIError && missing instanceof SandboxError && missing instanceof Error, 'the error class chain');
  check(missing.name === 'SnapshotNotFoundError' && missing.statusCode === 404 && missing.snapshotId === 'snap-does-not-exist', 'the error fields');
  check(/^[0-9a-f]{32}$/.test(missing.traceId), 'the error carries a trace id');
  const badArg = await client.getSnapshot('').then(() => null, (e) => e);
  check(badArg instanceof TypeError, 'an empty id is a TypeError');
  step('errors');

  // abort: mid-wait (a long poll interval, waiting for `completed`, which the server delays),
  // and with a signal that was aborted before the call
  const controller = new AbortController();
  const reason = new Error('smoke abort');
  const t0 = Date.now();
  const waiting = client.snapshotAndWait(restored.sandboxId, { waitUntil: 'completed', pollInterval: 30, signal: controller.signal });
  setTimeout(() => controller.abort(reason), 100);
  const aborted = await waiting.then(() => null, (e) => e);
  const abortMs = Date.now() - t0;
  check(aborted === reason, `an abort rejects with signal.reason, got ${aborted}`);
  check(abortMs < 5000, `the abort took ${abortMs} ms`);
  const early = await client.getSnapshot(snap.snapshotId, { signal: AbortSignal.abort(reason) }).then(() => null, (e) => e);
  check(early === reason, 'an already-aborted signal rejects with its reason');
  step('abort');

  // follow a background process's output as it is written (each runtime's streaming transport):
  // the second line waits for a file written only once the first has arrived
  const p = await sandbox.startProcess('sh', { args: ['-c', 'echo one; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo two'] });
  const lines = [];
  for await (const event of sandbox.followStdout(p.pid)) {
    lines.push(event.line);
    if (event.line === 'one') await sandbox.writeFile('/tmp/go', '');
  }
  check(lines.join(',') === 'one,two', `followStdout yielded ${JSON.stringify(lines)}`);
  step('follow');

  await sandbox.terminate();
  await restored.terminate();
  step('terminate');
  return { steps, abortMs };
}
