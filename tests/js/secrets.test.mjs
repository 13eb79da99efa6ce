// Credentials never come back: a scripted server echoes the key (or a provider's tokens) through
// every error path the client has, and every way a user can look at an error is searched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { SandboxClient } from 'tensorlake-snapshots';

const API = 'http://127.0.0.1:9';
const KEY = 'tl_apiKey_ECHOED_SECRET_0123456789';

/** Every view of an error a user or a logger may print. */
function views(err) {
  let json = '';
  try { json = JSON.stringify(err); } catch (e) { json = String(e); }
  return [err?.message, err?.stack, String(err), json, inspect(err, { depth: 10, showHidden: true })].join('\n');
}

function assertClean(err, secrets, label) {
  const text = views(err);
  for (const secret of secrets) assert.ok(!text.includes(secret), `${label}: the secret leaked:\n${text.slice(0, 2000)}`);
}

const respond = (body, status = 200, type = 'application/json') =>
  new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers: { 'content-type': type } });

/** Each case: a name, a server that echoes `secret`, and the call that must fail. */
const cases = (secret) => [
  ['invalid 2xx body and its content type', () => respond(`<html>${secret}</html>`, 200, `text/html; x=${secret}`),
    (c) => c.getSnapshot('snap-1')],
  ['JSON.parse error snippet', () => respond(`{"id": "${secret}`, 200),
    (c) => c.getSnapshot('snap-1')],
  ['error status responseMessage', () => respond(`bad request ${secret}`, 400, 'text/plain'),
    (c) => c.getSnapshot('snap-1')],
  ['error code from a JSON error body', () => respond({ error: `nope ${secret}`, code: secret }, 409),
    (c) => c.deleteSnapshot('snap-1')],
  ['SnapshotFailedError message, snapshot and responseMessage',
    () => respond({ id: 'snap-1', status: 'failed', error: `disk full ${secret}`, snapshot_uri: secret }),
    (c) => c.waitForSnapshot('snap-1', { pollInterval: 0.01 })],
  ['WaitTimeoutError lastStatus', () => respond({ id: 'snap-1', status: secret }),
    (c) => c.waitForSnapshot('snap-1', { timeout: 0 })],
  ['createAndConnect "terminated" detail',
    () => respond({ sandbox_id: 'sbx-1', status: 'terminated', termination_reason: secret, error_details: { message: secret } }),
    (c) => c.createAndConnect()],
  ['HTML answer to run', (url) => url.includes('/processes/run')
    ? respond(`<html>${secret}</html>`, 200, 'text/html')
    : respond({ sandbox_id: 'sbx-1', status: 'running', sandbox_url: API }),
    async (c) => (await c.connect('sbx-1')).run('true')],
  ['recovery note after an ambiguous snapshot POST', (url, init) => init.method === 'POST'
    ? respond(`upstream ${secret}`, 502, 'text/plain')
    : respond({ snapshots: [] }),
    (c) => c.snapshot('sbx-1')],
];

test('a server that echoes the API key gets [redacted] in every error view', async () => {
  for (const [name, server, call] of cases(KEY)) {
    const client = new SandboxClient({ apiUrl: API, apiKey: KEY, maxRetries: 0, fetch: async (url, init) => server(String(url), init) });
    const err = await call(client).then(() => assert.fail(`${name}: expected a failure`), (e) => e);
    assertClean(err, [KEY], name);
    assert.ok(views(err).includes('[redacted]'), `${name}: the echo is marked as redacted`);
  }
});

test('every token a rotating provider returned stays redacted, not only the last', async () => {
  let n = 0;
  const tokens = [];
  const tokenProvider = () => { const t = `tok_ROTATING_${++n}_abcdefghij`; tokens.push(t); return t; };
  let calls = 0;
  const fetch = async () => {
    calls += 1;
    // The first answers succeed; later ones echo every token handed out so far.
    if (calls < 4) return respond({ id: 'snap-1', status: 'completed' });
    return respond(`bad ${tokens.join(' ')}`, 400, 'text/plain');
  };
  const client = new SandboxClient({ apiUrl: API, tokenProvider, maxRetries: 0, fetch });
  for (let i = 0; i < 3; i++) await client.getSnapshot('snap-1');
  const err = await client.getSnapshot('snap-1').then(() => assert.fail('expected a 400'), (e) => e);
  assert.equal(tokens.length, 4);
  assertClean(err, tokens, 'rotating tokens');
});

test('credentials the caller passed never come back', async () => {
  const urlErr = (() => { try { new SandboxClient({ apiUrl: `http://user:${KEY}@127.0.0.1:9` }); } catch (e) { return e; } })();
  assert.ok(urlErr instanceof TypeError, String(urlErr));
  assertClean(urlErr, [KEY], 'apiUrl with credentials');

  let fetched = 0;
  const fetch = async () => { fetched += 1; return respond({ id: 'snap-1', status: 'completed' }); };
  const objectProvider = new SandboxClient({ apiUrl: API, tokenProvider: () => ({ token: KEY }), fetch });
  const err = await objectProvider.getSnapshot('snap-1').then(() => assert.fail('expected a failure'), (e) => e);
  assert.equal(err.code, 'CREDENTIALS');
  assertClean(err, [KEY], 'provider returning an object');

  for (const bad of [`${KEY}\r\nX-Evil: 1`, `${KEY}é`]) {
    const client = new SandboxClient({ apiUrl: API, tokenProvider: () => bad, fetch });
    const e = await client.getSnapshot('snap-1').then(() => assert.fail('expected a failure'), (x) => x);
    assert.equal(e.code, 'CREDENTIALS', String(e));
    assertClean(e, [KEY], 'unusable token');
  }
  assert.equal(fetched, 0, 'nothing is sent without a usable credential');
});

test('a provider that throws fails once, typed, without retries', async () => {
  let asked = 0;
  const client = new SandboxClient({
    apiUrl: API, maxRetries: 5,
    tokenProvider: () => { asked += 1; throw new Error('vault is sealed'); },
    fetch: async () => assert.fail('nothing may be sent'),
  });
  const err = await client.getSnapshot('snap-1').then(() => assert.fail('expected a failure'), (e) => e);
  assert.equal(err.code, 'CREDENTIALS');
  assert.match(err.message, /vault is sealed/);
  assert.equal(asked, 1, 'not retried');
});

test('a provider that never resolves is bounded by the signal and by requestTimeout', async () => {
  const never = () => new Promise(() => {});
  const fetch = async () => assert.fail('nothing may be sent');
  const controller = new AbortController();
  const client = new SandboxClient({ apiUrl: API, tokenProvider: never, fetch });
  const pending = client.getSnapshot('snap-1', { signal: controller.signal });
  setTimeout(() => controller.abort(new Error('user cancelled')), 50);
  await assert.rejects(pending, /user cancelled/);

  const bounded = new SandboxClient({ apiUrl: API, tokenProvider: never, fetch, requestTimeout: 0.2, maxRetries: 0 });
  const err = await bounded.getSnapshot('snap-1').then(() => assert.fail('expected a failure'), (e) => e);
  assert.equal(err.code, 'CREDENTIALS');
  assert.match(err.message, /did not return a token/);
});

test('a token or key with surrounding whitespace is sent trimmed, not refused as a line break', async () => {
  // The README's `tokenProvider: () => fetch('/token').then((r) => r.text())` gets "token\n" from
  // most text endpoints, and a key read from a file ends in a newline.
  const seen = [];
  const fetch = async (url, init) => {
    seen.push(init.headers.Authorization ?? init.headers.authorization);
    return respond({ id: 'snap-1', status: 'completed' });
  };
  await new SandboxClient({ apiUrl: API, fetch, tokenProvider: async () => 'tok-123\r\n' }).getSnapshot('snap-1');
  await new SandboxClient({ apiUrl: API, fetch, apiKey: `${KEY}\n` }).getSnapshot('snap-1');
  await new SandboxClient({ apiUrl: API, fetch, tokenProvider: () => ' \n' }).getSnapshot('snap-1');
  assert.deepEqual(seen, ['Bearer tok-123', `Bearer ${KEY}`, undefined]);
});
