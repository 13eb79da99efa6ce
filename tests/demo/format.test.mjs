// The demo's pure formatting helpers (www/format.js), in Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeError, duration, elapsed, humanBytes, isAbort, optionalNumber, relativeTime, resources, snapshotProgress } from '../../www/format.js';

test('humanBytes', () => {
  assert.equal(humanBytes(0), '0 B');
  assert.equal(humanBytes(1023), '1023 B');
  assert.equal(humanBytes(1024), '1.0 KB');
  assert.equal(humanBytes(1536), '1.5 KB');
  assert.equal(humanBytes(20 * 1024), '20 KB');
  assert.equal(humanBytes(5.25 * 1024 ** 3), '5.3 GB');
  assert.equal(humanBytes(undefined), '—');
  assert.equal(humanBytes(-1), '—');
});

test('relativeTime', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const ago = (s) => relativeTime(new Date(now - s * 1000), now);
  assert.equal(ago(2), 'just now');
  assert.equal(ago(42), '42 s ago');
  assert.equal(ago(150), '2 min ago');
  assert.equal(ago(3 * 3600), '3 h ago');
  assert.equal(ago(3 * 86400), '3 days ago');
  assert.equal(ago(-60), 'in the future');
  assert.equal(relativeTime(undefined, now), '—');
  assert.equal(relativeTime(new Date(NaN), now), '—');
});

test('durations', () => {
  assert.equal(duration(38.4), '38 ms');
  assert.equal(duration(1400), '1.4 s');
  assert.equal(elapsed(400), '0.4 s');
  assert.equal(elapsed(125_000), '2 min 05 s');
  assert.equal(elapsed(NaN), '—');
});

test('resources', () => {
  assert.equal(resources({ cpus: 4, memoryMb: 2048 }), '4 CPUs · 2048 MB');
  assert.equal(resources({ cpus: 1, memoryMb: undefined }), '1 CPU');
  assert.equal(resources({}), '—');
  assert.equal(resources(undefined), '—');
});

test('describeError prefers the server message and keeps class, status and trace id', () => {
  class RemoteAPIError extends Error {}
  const e = Object.assign(new RemoteAPIError('API error (status 500) on DELETE /x: boom'), {
    name: 'RemoteAPIError', statusCode: 500, responseMessage: 'boom', traceId: 'ab'.repeat(16), retryable: false,
  });
  assert.deepEqual(describeError(e), { name: 'RemoteAPIError', message: 'boom', statusCode: 500, traceId: 'ab'.repeat(16), code: undefined, retryable: false });
  assert.deepEqual(describeError(new RangeError('cpus: must be above 0')), { name: 'RangeError', message: 'cpus: must be above 0', statusCode: undefined, traceId: undefined, code: undefined, retryable: undefined });
  assert.equal(describeError('plain').message, 'plain');
  assert.equal(describeError(null).name, 'Error');
});

test('isAbort, optionalNumber, snapshotProgress', () => {
  const controller = new AbortController();
  controller.abort();
  assert.equal(isAbort(controller.signal.reason, controller.signal), true);
  assert.equal(isAbort(new Error('x'), new AbortController().signal), false);
  assert.equal(optionalNumber(''), undefined);
  assert.equal(optionalNumber('  '), undefined);
  assert.equal(optionalNumber('2'), 2);
  assert.ok(Number.isNaN(optionalNumber('two')));
  assert.equal(snapshotProgress('in_progress', 'completed'), 1 / 3);
  assert.equal(snapshotProgress('local_ready', 'local_ready'), 1);
  assert.equal(snapshotProgress('completed', 'local_ready'), 1);
  assert.equal(snapshotProgress('failed'), 0);
});
