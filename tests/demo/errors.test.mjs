// Cancel, Stop, and failures: a wait that is cancelled stops (and the page says so), a tour that
// is stopped cleans up after itself, and server faults and refused arguments are shown inline
// with their class, status, message and trace id, never as console errors or uncaught
// rejections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDemo, screenshot, startServer, until, useSiteAndBrowser } from './helpers.mjs';

const env = useSiteAndBrowser();

/**
 * Chromium prints "Failed to load resource: the server responded with a status of N" for every
 * HTTP error a fetch gets, even when the page handles it. Only those lines, for the status and
 * the path a test scripted on purpose, are tolerated.
 */
const expectedFailure = (status, path) => (p) =>
  p.text.startsWith(`Failed to load resource: the server responded with a status of ${status}`) && path.test(new URL(p.url).pathname);

async function createSandbox(page) {
  await page.getByRole('button', { name: 'Create sandbox' }).click();
  const id = await page.locator('#sandbox-create-result .ok-line code').textContent();
  await page.locator(`#snapshot-sandbox option[value="${id}"]`).waitFor({ state: 'attached' });
  return id;
}

test('Cancel during a snapshot wait stops the wait, and the page says so', { timeout: 120_000 }, async () => {
  const server = await startServer({ args: ['--static', env.site.dir] });
  // Long enough that the wait cannot end on its own during the test.
  await server.timing({ snapshot_local_ready_ms: 120_000 });
  const demo = await openDemo(env.browser, server.url);
  try {
    const { page } = demo;
    const snapshots = page.locator('#snapshots');
    const sandboxId = await createSandbox(page);
    await snapshots.getByLabel('Sandbox').selectOption(sandboxId);
    const cancel = snapshots.getByRole('button', { name: 'Cancel' });
    assert.equal(await cancel.isDisabled(), true);
    await snapshots.getByRole('button', { name: 'Snapshot', exact: true }).click();

    const progress = snapshots.locator('#snapshot-progress .progress');
    await snapshots.locator('#snapshot-progress .progress[data-status="in_progress"]').waitFor();
    const snapshotId = await progress.locator('.progress-line code').textContent();
    const polls = async () => (await server.requests()).filter((r) => r.method === 'GET' && r.path.endsWith(`/snapshots/${snapshotId}`)).length;
    // The page is polling: the status is asked for again and again.
    await until(async () => (await polls()) >= 2, { message: 'the page to poll the snapshot' });

    await cancel.click();
    await snapshots.locator('#snapshot-progress .progress[data-state="cancelled"]').waitFor();
    const line = await progress.locator('.progress-line').textContent();
    assert.match(line, /^Cancelled after \d+\.\d s\. The page stopped waiting for snap-/);
    assert.ok(line.includes(snapshotId));
    assert.equal(await cancel.isDisabled(), true);
    assert.equal(await snapshots.getByRole('button', { name: 'Snapshot', exact: true }).isEnabled(), true);
    assert.equal(await snapshots.locator('[data-stage="in_progress"]').getAttribute('data-state'), 'cancelled');

    // The wait really stopped: no more polls of that snapshot (one already in flight may land).
    const atCancel = await polls();
    await new Promise((r) => setTimeout(r, 2_000));
    assert.ok((await polls()) <= atCancel + 1, `still polling after Cancel: ${atCancel} -> ${await polls()}`);
    // The snapshot itself carries on on the server, as the page said; the table shows it.
    const onServer = await (await fetch(`${server.url}/v1/namespaces/default/snapshots/${snapshotId}`)).json();
    assert.equal(onServer.status, 'in_progress');
    await snapshots.locator(`#snapshot-table tr[data-snapshot-id="${snapshotId}"][data-status="in_progress"]`).waitFor();
    assert.match(await page.locator('#announcer').textContent(), /cancelled/i);

    await screenshot(page, 'cancelled');
    demo.assertClean();
  } finally {
    await demo.close();
    await server.stop();
  }
});

test('Stop during the tour stops it and removes what it had created', { timeout: 120_000 }, async () => {
  const server = await startServer({ args: ['--static', env.site.dir] });
  await server.timing({ snapshot_local_ready_ms: 120_000 });
  const demo = await openDemo(env.browser, server.url);
  try {
    const { page } = demo;
    await page.getByRole('button', { name: 'Start the tour' }).click();
    const steps = page.locator('#tour-steps');
    await steps.locator('[data-step="snapshot"] .progress[data-status="in_progress"]').waitFor();
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.locator('#tour-steps[data-state="cancelled"]').waitFor();
    assert.equal(await steps.locator('[data-step="snapshot"]').getAttribute('data-state'), 'cancelled');
    assert.equal(await steps.locator('[data-step="restore"]').getAttribute('data-state'), 'skipped');
    assert.match(await page.locator('#tour-status').textContent(), /Tour stopped/);
    await page.locator('#tour-status .tour-cleanup').waitFor();
    assert.match(await page.locator('#tour-status .tour-cleanup').textContent(), /^Removed sbx-[a-z0-9]+, snap-[a-z0-9]+\.$/);
    const left = await (await fetch(`${server.url}/v1/namespaces/default/sandboxes`)).json();
    assert.deepEqual(left.sandboxes, []);
    assert.equal(await page.getByRole('button', { name: 'Start the tour' }).isEnabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Stop' }).isVisible(), false);
    demo.assertClean();
  } finally {
    await demo.close();
    await server.stop();
  }
});

test('server faults and refused arguments are shown inline with class, status, message and trace id', { timeout: 120_000 }, async () => {
  const server = await startServer({ args: ['--static', env.site.dir] });
  const demo = await openDemo(env.browser, server.url);
  try {
    const { page } = demo;
    const snapshots = page.locator('#snapshots');
    const sandboxId = await createSandbox(page);
    await snapshots.getByLabel('Sandbox').selectOption(sandboxId);
    await snapshots.getByRole('button', { name: 'Snapshot', exact: true }).click();
    await snapshots.locator('#snapshot-progress .progress[data-state="done"]').waitFor();
    const snapshotId = await snapshots.locator('#snapshot-progress .progress-line code').textContent();
    const row = snapshots.locator(`#snapshot-table tr[data-snapshot-id="${snapshotId}"]`);
    await row.waitFor();

    // 1. A scripted HTTP 500 on the delete.
    await server.clearRequests();
    await server.fault({ method: 'DELETE', path: '/v1/namespaces/*/snapshots/*', status: 500, body: 'the disk is on fire' });
    await row.getByRole('button', { name: `Delete ${snapshotId}` }).click();
    await page.getByRole('dialog', { name: 'Delete this snapshot?' }).getByRole('button', { name: 'Delete snapshot' }).click();
    const box = snapshots.locator('#snapshot-result .error-box');
    await box.waitFor();
    assert.equal(await box.getAttribute('role'), 'alert');
    assert.equal(await box.locator('.err-class').textContent(), 'RemoteAPIError');
    assert.equal(await box.locator('.err-status').textContent(), 'HTTP 500');
    assert.equal(await box.locator('.err-context').textContent(), `Deleting ${snapshotId} failed`);
    assert.equal(await box.locator('.err-message').textContent(), 'the disk is on fire');
    // The trace id shown is the one the request carried (the server logged its traceparent).
    const traceId = await box.locator('.err-trace code').textContent();
    assert.match(traceId, /^[0-9a-f]{32}$/);
    const deletes = (await server.requests()).filter((r) => r.method === 'DELETE' && r.fault);
    assert.equal(deletes.length, 1);
    assert.equal(deletes[0].traceparent.split('-')[1], traceId);
    // The fault had no effect: the snapshot is still there.
    assert.equal((await fetch(`${server.url}/v1/namespaces/default/snapshots/${snapshotId}`)).status, 200);
    await screenshot(page, 'fault');

    // 2. A list that keeps answering 503: retried, then shown in the panel as retryable.
    await server.fault({ method: 'GET', path: '/v1/namespaces/*/snapshots', status: 503, count: 1000 });
    await snapshots.getByRole('button', { name: 'Refresh' }).click();
    const listError = snapshots.locator('#snapshots-error .error-box');
    await listError.waitFor({ timeout: 30_000 });
    assert.equal(await listError.locator('.err-class').textContent(), 'RemoteAPIError');
    assert.equal(await listError.locator('.err-status').textContent(), 'HTTP 503');
    assert.equal(await listError.locator('.err-flag').textContent(), 'retryable');
    assert.equal(await listError.locator('.err-context').textContent(), 'Could not list the snapshots');
    const attempts = (await server.requests()).filter((r) => r.method === 'GET' && r.path.endsWith('/snapshots') && r.status === 503).length;
    assert.ok(attempts >= 4, `the client retried (saw ${attempts} attempts)`);
    // Once the server recovers, a refresh clears the error.
    await server.clearFaults();
    await snapshots.getByRole('button', { name: 'Refresh' }).click();
    await listError.waitFor({ state: 'detached' });

    // 3. A memory snapshot restored with an override: the server's 400 and its reason.
    await snapshots.getByLabel('Type').selectOption('memory');
    await snapshots.getByRole('button', { name: 'Snapshot', exact: true }).click();
    await snapshots.locator('#snapshot-progress .progress[data-state="done"]').waitFor();
    const memoryId = await snapshots.locator('#snapshot-progress .progress-line code').textContent();
    assert.notEqual(memoryId, snapshotId);
    const memoryRow = snapshots.locator(`#snapshot-table tr[data-snapshot-id="${memoryId}"]`);
    await memoryRow.getByRole('button', { name: `Restore ${memoryId}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore a snapshot' });
    assert.equal(await dialog.locator('#restore-memory-note').isVisible(), true);
    await dialog.getByLabel('CPUs').fill('4');
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await box.waitFor();
    await snapshots.locator('#snapshot-result .error-box[data-status="400"]').waitFor();
    assert.equal(await box.locator('.err-class').textContent(), 'RemoteAPIError');
    assert.match(await box.locator('.err-message').textContent(), /memory snapshot/);

    // 4. An argument the library refuses before any request: a negative CPU count.
    await server.clearRequests();
    await page.locator('#sandboxes').getByLabel('CPUs').fill('-1');
    await page.getByRole('button', { name: 'Create sandbox' }).click();
    const argError = page.locator('#sandbox-create-result .error-box');
    await argError.waitFor();
    assert.equal(await argError.locator('.err-class').textContent(), 'RangeError');
    assert.match(await argError.locator('.err-message').textContent(), /cpus/);
    assert.equal(await argError.locator('.err-status').count(), 0);
    assert.equal((await server.requests()).filter((r) => r.method === 'POST' && r.path.endsWith('/sandboxes')).length, 0);

    // Errors can be dismissed from the keyboard.
    await argError.getByRole('button', { name: 'Dismiss this error' }).focus();
    await page.keyboard.press('Enter');
    await argError.waitFor({ state: 'detached' });

    demo.assertClean([
      expectedFailure(500, /^\/v1\/namespaces\/default\/snapshots\/snap-[a-z0-9]+$/),
      expectedFailure(503, /^\/v1\/namespaces\/default\/snapshots$/),
      expectedFailure(400, /^\/v1\/namespaces\/default\/sandboxes$/),
    ]);
    // And those lines were really there: the faults reached the page.
    assert.ok(demo.problems.some((p) => p.text.includes('status of 500')));
  } finally {
    await demo.close();
    await server.stop();
  }
});
