// Tolerant decoding through the real wasm path: odd but valid shapes decode, malformed ones become
// typed errors (never a crash or a hung promise). Responses come from a `fetch` option, so each
// shape is exactly what the test says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxClient, SandboxError, RemoteAPIError } from 'tensorlake-snapshots';

function clientAnswering(body, { status = 200, contentType = 'application/json' } = {}) {
  const seen = [];
  const client = SandboxClient.forLocalhost({
    maxRetries: 0,
    fetch: async (url, init) => {
      seen.push({ url, init });
      return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers: { 'content-type': contentType } });
    },
  });
  return { client, seen };
}

const NOV_30_2026 = Date.UTC(2026, 10, 30, 10, 0, 0);

test('odd but valid snapshot shapes decode', async () => {
  const cases = [
    [{ snapshot_id: 's1', status: 'completed', created_at: NOV_30_2026 / 1000 }, { snapshotId: 's1', createdAt: NOV_30_2026 }],
    [{ id: 's2', status: 'replicating', created_at: NOV_30_2026 * 1000 }, { snapshotId: 's2', status: 'replicating', createdAt: NOV_30_2026 }],
    [{ id: 's3', status: 'completed', created_at: '2026-11-30T10:00:00Z' }, { snapshotId: 's3', createdAt: NOV_30_2026 }],
    [{ id: 's4', status: 'completed', created_at: '2026-11-30T12:00:00.500+02:00' }, { snapshotId: 's4', createdAt: NOV_30_2026 + 500 }],
    [{ id: 's5', status: 'failed', error: null, size_bytes: '12', namespace: 7, brand_new_field: { x: 1 } },
      { snapshotId: 's5', error: undefined, sizeBytes: undefined, namespace: undefined, createdAt: undefined }],
  ];
  for (const [wire, expected] of cases) {
    const { client } = clientAnswering(wire);
    const info = await client.getSnapshot('x');
    for (const [key, value] of Object.entries(expected)) {
      const actual = key === 'createdAt' && info.createdAt ? info.createdAt.getTime() : info[key];
      assert.deepEqual(actual, value, `${JSON.stringify(wire)} → ${key}`);
    }
    assert.equal('brand_new_field' in info, false);
    assert.deepEqual(Object.keys(info).sort(), [
      'baseImage', 'createdAt', 'error', 'namespace', 'rootfsDiskBytes', 'sandboxId', 'sizeBytes', 'snapshotFormatVersion',
      'snapshotId', 'snapshotType', 'snapshotUri', 'status',
    ]);
  }
});

test('a listing may be {"items": [...]} and every record is decoded', async () => {
  const { client } = clientAnswering({ items: [{ id: 'a', status: 'completed', sandbox_id: 'sbx' }, { snapshot_id: 'b', status: 'in_progress' }] });
  const list = await client.listSnapshots();
  assert.deepEqual(list.map((s) => [s.snapshotId, s.status, s.sandboxId]), [['a', 'completed', 'sbx'], ['b', 'in_progress', undefined]]);
});

test('malformed bodies are SandboxError INVALID_RESPONSE, naming the problem', async () => {
  const cases = [
    ['getSnapshot', 'null', /expected JSON|must be a JSON object/],
    ['getSnapshot', '[]', /must be a JSON object/],
    ['getSnapshot', '42', /must be a JSON object/],
    ['getSnapshot', '"text"', /must be a JSON object/],
    ['getSnapshot', '{"status":"completed"}', /no "id" or "snapshot_id"/],
    ['getSnapshot', '{"id":"s"}', /no "status"/],
    ['getSnapshot', '{"id":"s","status":', /expected JSON/],
    ['listSnapshots', 'null', /"snapshots" array/],
    ['listSnapshots', '{"snapshots":[null]}', /must be a JSON object/],
    ['listSnapshots', '{"snapshots":{"id":"s"}}', /"snapshots" array/],
    ['listSandboxes', '{"sandboxes":[{"id":"x"}]}', /no "status"/],
    ['getSandbox', '[{"id":"x","status":"running"}]', /must be a JSON object/],
  ];
  for (const [method, body, pattern] of cases) {
    const { client } = clientAnswering(body);
    const err = await (method.startsWith('list') ? client[method]() : client[method]('x')).catch((e) => e);
    assert.ok(err instanceof SandboxError && !(err instanceof RemoteAPIError), `${method} ${body}: ${err}`);
    assert.equal(err.code, 'INVALID_RESPONSE', `${method} ${body}`);
    assert.match(err.message, pattern, `${method} ${body}`);
    assert.match(err.traceId, /^[0-9a-f]{32}$/);
  }
});

test('an HTML page with a 2xx status is reported with its content type', async () => {
  const { client } = clientAnswering('<!doctype html><title>Login</title>', { contentType: 'text/html' });
  const err = await client.getSnapshot('x').catch((e) => e);
  assert.equal(err.code, 'INVALID_RESPONSE');
  assert.match(err.message, /text\/html/);
  assert.match(err.message, /<!doctype html>/);
});

test('error bodies of every shape give a readable message', async () => {
  const cases = [
    ['{"error":"no such file","code":"NOT_FOUND"}', 404, 'no such file', 'NOT_FOUND'],
    ['{"message":"quota exceeded"}', 403, 'quota exceeded', undefined],
    ['<html><head><title>502 Bad Gateway</title></head></html>', 502, '502 Bad Gateway (HTML error page)', undefined],
    ['', 500, 'the server sent no message', undefined],
    ['null', 500, 'null', undefined],
  ];
  for (const [body, status, message, code] of cases) {
    const { client } = clientAnswering(body, { status, contentType: body.startsWith('<') ? 'text/html' : 'text/plain' });
    const err = await client.listSnapshots().catch((e) => e);
    assert.ok(err instanceof RemoteAPIError, String(err));
    assert.equal(err.statusCode, status);
    assert.equal(err.responseMessage, message);
    assert.equal(err.code, code);
  }
});

test('process streams with odd frames are folded, and a stream without an exit is an error', async () => {
  const sse = (frames) => frames.map((f) => `data: ${f}\n\n`).join('');
  const sandboxJson = { id: 'sbx', status: 'running', sandbox_url: 'http://127.0.0.1:8900' };
  const make = (stream) => SandboxClient.forLocalhost({
    fetch: async (url) => (url.includes('/api/v1/processes/run')
      ? new Response(stream, { headers: { 'content-type': 'text/event-stream' } })
      : new Response(JSON.stringify(sandboxJson), { headers: { 'content-type': 'application/json' } })),
  });
  const ok = await (await make(sse(['null', '[]', '{"pid":1}', 'not json', '{"line":"a","timestamp":1}', '{}', '{"line":"b","stream":"stderr","timestamp":2}', '{"exit_code":0}'])).connect('sbx')).run('x');
  assert.deepEqual(ok, { exitCode: 0, stdout: 'a', stderr: 'b' });
  const cut = await (await make(sse(['{"pid":1}', '{"line":"a","timestamp":1}'])).connect('sbx')).run('x').catch((e) => e);
  assert.equal(cut.name, 'SandboxConnectionError');
  assert.match(cut.message, /without an exit event/);
});

test('a custom fetch whose response is not a Response is a typed error, not a crash', async () => {
  const weird = [
    { status: 200, headers: { get: () => null }, text: async () => 42 },
    { status: 200, headers: { get: () => null }, text: async () => { throw new Error('stream broke'); } },
    { status: 200 },
  ];
  for (const response of weird) {
    const client = SandboxClient.forLocalhost({ maxRetries: 0, fetch: async () => response });
    const err = await client.getSnapshot('x').catch((e) => e);
    assert.equal(err.name, 'SandboxConnectionError', String(err));
  }
  const throwing = SandboxClient.forLocalhost({ maxRetries: 0, fetch: () => { throw new Error('sync failure'); } });
  const err = await throwing.getSnapshot('x').catch((e) => e);
  assert.equal(err.name, 'SandboxConnectionError');
  assert.match(err.message, /sync failure/);
  assert.ok((await throwing.getSnapshot('').catch((e) => e)) instanceof TypeError, 'the client still works after a failure');
});

test('a long error body of bytes is cut, its malformed UTF-8 shown as U+FFFD', async () => {
  // readFile's answer is bytes: the error message reads a prefix of them, decoded lossily in JS
  // (src/wasm/js_json.rs, text_prefix), one U+FFFD per malformed sequence as Rust's lossy decoding.
  const body = new Uint8Array(40000).fill(0x61);
  body.set([0xff, 0xe2, 0x82]);
  const client = SandboxClient.forLocalhost({
    maxRetries: 0,
    fetch: async (url) => String(url).includes('/files')
      ? new Response(body, { status: 500, headers: { 'content-type': 'application/octet-stream' } })
      : new Response(JSON.stringify({ id: 'sbx-1', status: 'running', sandbox_url: 'http://127.0.0.1:9/' }),
        { status: 200, headers: { 'content-type': 'application/json' } }),
  });
  const sandbox = await client.connect('sbx-1');
  const err = await sandbox.readFile('/x').catch((e) => e);
  assert.ok(err instanceof RemoteAPIError, String(err));
  assert.ok(err.responseMessage.startsWith('\uFFFD\uFFFDaaa'), err.responseMessage.slice(0, 20));
  assert.ok(err.message.length < 4096, `message of ${err.message.length} chars`);
});

test('answers nested 100,000 deep decode without a trap, and the module works after', async () => {
  // JSON.parse takes any depth; the fields a SandboxInfo or ProcessInfo passes through are converted
  // level by level, and without a bound a 300 KB answer overflowed the wasm stack and killed Node.
  const depth = 100000;
  const deepObject = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const deepArray = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  for (const extra of [deepObject, deepArray]) {
    const { client } = clientAnswering(`{"id":"sbx","status":"running","sandbox_url":"http://127.0.0.1:9/","extra":${extra}}`);
    const info = await client.getSandbox('sbx');
    assert.equal(info.sandboxId, 'sbx');
    assert.equal(typeof info.extra, 'object');
    assert.equal((await client.listSandboxes().catch((e) => e)).name, 'SandboxError', 'the next call still runs');
    const sandbox = await client.connect('sbx');
    const processInfo = await sandbox.getProcess(1).catch((e) => e);
    assert.equal(typeof processInfo.extra, 'object', String(processInfo));
  }
  const { client } = clientAnswering(`{"id":"sbx","status":"running","extra":{"deep_key":{"created_at":null}}}`);
  assert.deepEqual((await client.getSandbox('sbx')).extra, { deepKey: { createdAt: undefined } }, 'shallow levels still converted');
});

test('a fetch that ignores its signal is still bounded by requestTimeout and by the caller\'s signal', async () => {
  // A wrapper that drops init.signal (or a fetch without abort support): the call used to hang
  // forever, its timeout and the caller's abort reaching only a signal nobody listened to.
  const never = () => new Promise(() => {});
  let cancelled = 0;
  const endless = async () => new Response(new ReadableStream({ start() {}, cancel() { cancelled += 1; } }), { headers: { 'content-type': 'application/json' } });
  for (const fetch of [never, endless]) {
    const client = SandboxClient.forLocalhost({ maxRetries: 0, requestTimeout: 0.2, fetch });
    const err = await client.getSnapshot('s').catch((e) => e);
    assert.equal(err.name, 'SandboxConnectionError', String(err));
    assert.equal(err.timedOut, true);
    const patient = SandboxClient.forLocalhost({ maxRetries: 0, fetch });
    const controller = new AbortController();
    const reason = new Error('stop');
    setTimeout(() => controller.abort(reason), 50);
    assert.equal(await patient.getSnapshot('s', { signal: controller.signal }).catch((e) => e), reason);
  }
  // Nobody reads the abandoned bodies: each was cancelled, not left open.
  assert.equal(cancelled, 2);
});

test('a follow over a fetch that ignores its signal still ends at the caller\'s abort', async () => {
  const sandboxJson = JSON.stringify({ id: 'sbx', status: 'running', sandbox_url: 'http://127.0.0.1:9/' });
  let cancelled = 0;
  const silent = () => new Response(new ReadableStream({ start() {}, cancel() { cancelled += 1; } }), { headers: { 'content-type': 'text/event-stream' } });
  // The third answers late, after the abort: its stream must be closed, not left open.
  const late = () => new Promise((resolve) => setTimeout(() => resolve(silent()), 150));
  for (const follow of [() => new Promise(() => {}), async () => silent(), late]) {
    const client = SandboxClient.forLocalhost({
      maxRetries: 0,
      fetch: async (url) => (String(url).includes('/follow') ? follow() : new Response(sandboxJson)),
    });
    const sandbox = await client.connect('sbx');
    const controller = new AbortController();
    const reason = new Error('stop following');
    setTimeout(() => controller.abort(reason), 50);
    const iterator = sandbox.followStdout(1, { signal: controller.signal });
    assert.equal(await iterator.next().catch((e) => e), reason);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(cancelled, 2, 'the open stream and the late one are closed');
});

test('a follow answered 200 with something other than an event stream is an error, not an empty exit', async () => {
  // A proxy's login page or a JSON answer used to end the loop at once, as if the process had
  // exited without printing anything.
  const sandboxJson = JSON.stringify({ id: 'sbx', status: 'running', sandbox_url: 'http://127.0.0.1:9/' });
  for (const [body, type] of [['<html>sign in</html>', 'text/html'], ['{"hello":1}', 'application/json']]) {
    const client = SandboxClient.forLocalhost({
      maxRetries: 0,
      fetch: async (url) => (String(url).includes('/follow')
        ? new Response(body, { headers: { 'content-type': type } })
        : new Response(sandboxJson, { headers: { 'content-type': 'application/json' } })),
    });
    const sandbox = await client.connect('sbx');
    const err = await sandbox.followStdout(1).next().catch((e) => e);
    assert.equal(err.name, 'SandboxConnectionError', String(err));
    assert.match(err.message, new RegExp(`could not open the output stream.*text/event-stream response, got ${type}`));
  }
  // An event stream, and one without a content type, still stream.
  for (const headers of [{ 'content-type': 'text/event-stream; charset=utf-8' }, {}]) {
    const client = SandboxClient.forLocalhost({
      maxRetries: 0,
      fetch: async (url) => (String(url).includes('/follow')
        ? new Response(new TextEncoder().encode('event: output\ndata: {"line":"a","timestamp":1}\n\nevent: eof\ndata: {}\n\n'), { headers })
        : new Response(sandboxJson)),
    });
    const lines = [];
    for await (const event of (await client.connect('sbx')).followStdout(1)) lines.push(event.line);
    assert.deepEqual(lines, ['a']);
  }
});
