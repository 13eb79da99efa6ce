// A misspelled option key is refused by name, with the accepted keys, before any request: in the
// constructors and in every method that takes options (src/wasm/options.rs, serde's
// deny_unknown_fields). The scripted `fetch` fails the test if any of these calls reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxClient } from 'tensorlake-snapshots';

const API = 'http://127.0.0.1:9';

const json = (body, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** True for the TypeError of an unknown key: it names the key and lists what is accepted. */
function namesKey(key, accepted) {
  return (err) => {
    assert.ok(err instanceof TypeError, `${key}: ${err}`);
    assert.ok(err.message.includes(`\`${key}\``), `${key} not named in: ${err.message}`);
    assert.ok(err.message.includes(`\`${accepted}\``), `${accepted} not listed in: ${err.message}`);
    return true;
  };
}

test('the constructors refuse a misspelled key by name, listing the accepted ones', () => {
  const fetch = () => assert.fail('no request was expected');
  assert.throws(() => new SandboxClient({ apiUrl: API, fetch, requestTimout: 5 }), namesKey('requestTimout', 'requestTimeout'));
  assert.throws(() => SandboxClient.forLocalhost({ fetch, apikey: 'k' }), namesKey('apikey', 'apiKey'));
  // Spelled right, the same options are accepted.
  assert.doesNotThrow(() => new SandboxClient({ apiUrl: API, fetch, requestTimeout: 5 }));
});

test('every method refuses a misspelled option key before sending anything', async () => {
  let armed = false;
  const sent = [];
  const fetch = async (url) => {
    if (armed) {
      sent.push(String(url));
      throw new Error(`no request was expected: ${url}`);
    }
    // Only `connect` below, to get a sandbox handle.
    return json({ id: 'sbx-1', namespace: 'default', status: 'running', created_at: 1796040000000 });
  };
  const client = new SandboxClient({ apiUrl: API, fetch, maxRetries: 0 });
  const sandbox = await client.connect('sbx-1');
  armed = true;

  const calls = [
    ['snapshot', () => client.snapshot('sbx-1', { snapshotTyp: 'memory' }), 'snapshotTyp', 'snapshotType'],
    ['getSnapshot', () => client.getSnapshot('snap-1', { signl: null }), 'signl', 'signal'],
    ['listSnapshots', () => client.listSnapshots({ sandboxID: 'sbx-1' }), 'sandboxID', 'sandboxId'],
    ['deleteSnapshot', () => client.deleteSnapshot('snap-1', { force: true }), 'force', 'signal'],
    ['snapshotAndWait', () => client.snapshotAndWait('sbx-1', { pollIntervall: 1 }), 'pollIntervall', 'pollInterval'],
    ['waitForSnapshot', () => client.waitForSnapshot('snap-1', { waitUtil: 'completed' }), 'waitUtil', 'waitUntil'],
    ['createSandbox', () => client.createSandbox({ memoryMB: 2048 }), 'memoryMB', 'memoryMb'],
    ['createAndConnect', () => client.createAndConnect({ startupTimout: 5 }), 'startupTimout', 'startupTimeout'],
    ['connect', () => client.connect('sbx-1', { timeout: 5 }), 'timeout', 'signal'],
    ['getSandbox', () => client.getSandbox('sbx-1', { verbose: true }), 'verbose', 'signal'],
    ['listSandboxes', () => client.listSandboxes({ limit: 5 }), 'limit', 'signal'],
    ['deleteSandbox', () => client.deleteSandbox('sbx-1', { force: true }), 'force', 'signal'],
    ['sandbox.run', () => sandbox.run('ls', { cwd: '/' }), 'cwd', 'workingDir'],
    ['sandbox.commands.run', () => sandbox.commands.run('ls', { timeOut: 1 }), 'timeOut', 'timeout'],
    ['sandbox.readFile', () => sandbox.readFile('/a', { encoding: 'utf8' }), 'encoding', 'signal'],
    ['sandbox.writeFile', () => sandbox.writeFile('/a', 'x', { mode: 0o644 }), 'mode', 'signal'],
    ['sandbox.deleteFile', () => sandbox.deleteFile('/a', { recursive: true }), 'recursive', 'signal'],
    ['sandbox.listDirectory', () => sandbox.listDirectory('/', { recursive: true }), 'recursive', 'signal'],
    ['sandbox.info', () => sandbox.info({ signl: null }), 'signl', 'signal'],
    ['sandbox.snapshot', () => sandbox.snapshot({ type: 'memory' }), 'type', 'snapshotType'],
    ['sandbox.snapshotAndWait', () => sandbox.snapshotAndWait({ timeOut: 5 }), 'timeOut', 'timeout'],
    ['sandbox.terminate', () => sandbox.terminate({ force: true }), 'force', 'signal'],
    ['sandbox.startProcess', () => sandbox.startProcess('ls', { cwd: '/' }), 'cwd', 'workingDir'],
    ['sandbox.listProcesses', () => sandbox.listProcesses({ all: true }), 'all', 'signal'],
    ['sandbox.getProcess', () => sandbox.getProcess(1, { signl: null }), 'signl', 'signal'],
    ['sandbox.killProcess', () => sandbox.killProcess(1, { force: true }), 'force', 'signal'],
    ['sandbox.sendSignal', () => sandbox.sendSignal(1, 15, { group: true }), 'group', 'signal'],
    ['sandbox.writeStdin', () => sandbox.writeStdin(1, 'x', { encoding: 'utf8' }), 'encoding', 'signal'],
    ['sandbox.closeStdin', () => sandbox.closeStdin(1, { force: true }), 'force', 'signal'],
    ['sandbox.getStdout', () => sandbox.getStdout(1, { tail: 5 }), 'tail', 'signal'],
    ['sandbox.getStderr', () => sandbox.getStderr(1, { tail: 5 }), 'tail', 'signal'],
    ['sandbox.getOutput', () => sandbox.getOutput(1, { tail: 5 }), 'tail', 'signal'],
    ['sandbox.suspend', () => sandbox.suspend({ pollIntervall: 1 }), 'pollIntervall', 'pollInterval'],
    ['sandbox.resume', () => sandbox.resume({ waitUntil: 'running' }), 'waitUntil', 'wait'],
    ['sandbox.status', () => sandbox.status({ verbose: true }), 'verbose', 'signal'],
    ['sandbox.update', () => sandbox.update({ ports: [80] }), 'ports', 'exposedPorts'],
    ['sandbox.checkpoint', () => sandbox.checkpoint({ snapshotType: 'memory' }), 'snapshotType', 'checkpointType'],
    ['sandbox.listSnapshots', () => sandbox.listSnapshots({ sandboxId: 'sbx-2' }), 'sandboxId', 'signal'],
    ['client.suspend', () => client.suspend('sbx-1', { timeOut: 5 }), 'timeOut', 'timeout'],
    ['client.resume', () => client.resume('sbx-1', { timeOut: 5 }), 'timeOut', 'timeout'],
    ['client.update', () => client.update('sbx-1', { allowUnauthenticated: true }), 'allowUnauthenticated', 'allowUnauthenticatedAccess'],
  ];
  for (const [name, call, key, accepted] of calls) {
    await assert.rejects(call(), namesKey(key, accepted), name);
  }
  // watchSnapshot returns an iterator, so it throws at once.
  assert.throws(() => client.watchSnapshot('snap-1', { pollIntervall: 1 }), namesKey('pollIntervall', 'pollInterval'));
  for (const follow of ['followStdout', 'followStderr', 'followOutput']) {
    assert.throws(() => sandbox[follow](1, { signl: null }), namesKey('signl', 'signal'), follow);
  }
  assert.deepEqual(sent, []);
});

test('a key that is right for one call is still refused by another', async () => {
  const client = new SandboxClient({ apiUrl: API, fetch: () => assert.fail('no request was expected') });
  // snapshotType belongs to snapshotAndWait, not to waitForSnapshot; startupTimeout to
  // createAndConnect, not to createSandbox.
  await assert.rejects(client.waitForSnapshot('snap-1', { snapshotType: 'memory' }), namesKey('snapshotType', 'pollInterval'));
  await assert.rejects(client.createSandbox({ startupTimeout: 5 }), namesKey('startupTimeout', 'memoryMb'));
});

test('an options object whose getter throws is a rejected TypeError, not a synchronous throw', async () => {
  const client = new SandboxClient({ apiUrl: API, fetch: () => assert.fail('no request was expected') });
  const hostile = { get timeout() { throw new Error('getter boom'); } };
  let promise;
  assert.doesNotThrow(() => { promise = client.waitForSnapshot('snap-1', hostile); });
  await assert.rejects(promise, (err) => err instanceof TypeError && /^options: could not be read/.test(err.message) && /getter boom/.test(err.message));
  assert.throws(() => new SandboxClient({ apiUrl: API, get fetch() { throw new Error('getter boom'); } }), TypeError);
});
