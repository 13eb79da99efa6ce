// The sandboxes and snapshots panels, driven like a user would: create a sandbox, run commands,
// snapshot it, see it in the table, restore it with and without overrides, delete it (after a
// confirmation that can be declined), terminate the sandboxes. Every step is checked against
// the server too, so the page cannot pass by only looking right.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDemo, screenshot, startServer, useSiteAndBrowser } from './helpers.mjs';
import { humanBytes } from '../../www/format.js';

const env = useSiteAndBrowser();

/** Runs a shell command from the panel and returns what the page shows. */
async function runCommand(page, sandboxId, command) {
  const form = page.locator('#command-form');
  await form.getByLabel('Sandbox').selectOption(sandboxId);
  await form.getByLabel('Shell command').fill(command);
  const before = await page.locator('#command-result .command-output').count();
  if (before) await page.locator('#command-result').evaluate((el) => el.replaceChildren());
  await form.getByRole('button', { name: 'Run', exact: true }).click();
  const output = page.locator('#command-result .command-output');
  await output.waitFor();
  return {
    exitCode: Number(await output.getAttribute('data-exit-code')),
    stdout: await output.locator('[data-stream="stdout"]').textContent(),
    stderr: (await output.locator('[data-stream="stderr"]').count()) ? await output.locator('[data-stream="stderr"]').textContent() : '',
  };
}

test('sandboxes and snapshots panels: create, run, snapshot, list, restore with overrides, delete, terminate', { timeout: 120_000 }, async () => {
  const server = await startServer({ args: ['--static', env.site.dir] });
  const api = async (path) => {
    const res = await fetch(`${server.url}/v1/namespaces/default${path}`);
    return { status: res.status, body: res.status === 200 ? await res.json() : await res.text() };
  };
  const demo = await openDemo(env.browser, server.url);
  try {
    const { page } = demo;
    const sandboxes = page.locator('#sandboxes');
    const snapshots = page.locator('#snapshots');

    // Create a sandbox with 1 CPU / 1024 MB.
    await sandboxes.getByLabel('CPUs').fill('1');
    await sandboxes.getByLabel('Memory (MB)').fill('1024');
    await sandboxes.getByRole('button', { name: 'Create sandbox' }).click();
    const created = await sandboxes.locator('#sandbox-create-result .ok-line code').textContent();
    assert.match(created, /^sbx-[a-z0-9]+$/);
    const row = sandboxes.locator(`#sandbox-table tr[data-sandbox-id="${created}"]`);
    await row.waitFor();
    assert.equal(await row.locator('.badge').textContent(), 'running');
    assert.equal(await row.locator('[data-resources]').textContent(), '1 CPU · 1024 MB');
    assert.equal((await api(`/sandboxes/${created}`)).body.status, 'running');

    // Run commands in it: the output is the sandbox's, computed there.
    const made = await runCommand(page, created, "mkdir -p /data && printf 'panel-%s' $((6*7)) > /data/mark.txt && cat /data/mark.txt");
    assert.deepEqual(made, { exitCode: 0, stdout: 'panel-42', stderr: '' });
    const failed = await runCommand(page, created, 'ls /definitely-missing');
    assert.notEqual(failed.exitCode, 0);
    assert.match(failed.stderr, /definitely-missing/);
    assert.match(await page.locator('#command-result .exit').textContent(), new RegExp(`exit code ${failed.exitCode}`));

    // Snapshot it (filesystem, until completed) and find it in the table.
    await snapshots.getByLabel('Sandbox').selectOption(created);
    await snapshots.getByLabel('Type').selectOption('filesystem');
    await snapshots.getByLabel('Wait until').selectOption('completed');
    await snapshots.getByRole('button', { name: 'Snapshot', exact: true }).click();
    const progress = snapshots.locator('#snapshot-progress .progress');
    await snapshots.locator('#snapshot-progress .progress[data-state="done"]').waitFor();
    assert.equal(await progress.getAttribute('data-status'), 'completed');
    const snapshotId = await progress.locator('.progress-line code').textContent();
    assert.match(snapshotId, /^snap-[a-z0-9]+$/);
    const snapRow = snapshots.locator(`#snapshot-table tr[data-snapshot-id="${snapshotId}"]`);
    await snapshots.locator(`#snapshot-table tr[data-snapshot-id="${snapshotId}"][data-status="completed"]`).waitFor();
    const onServer = (await api(`/snapshots/${snapshotId}`)).body;
    const cells = Object.fromEntries(await snapRow.locator('td[data-label]').evaluateAll((tds) => tds.map((td) => [td.dataset.label, td.textContent])));
    assert.deepEqual(cells, {
      Snapshot: snapshotId,
      Sandbox: created,
      Type: 'filesystem',
      Status: 'completed',
      Size: humanBytes(onServer.size_bytes),
      Created: cells.Created,
      Error: '—',
    });
    assert.ok(onServer.size_bytes > 0);
    assert.match(cells.Created, /^(just now|\d+ s ago)$/);

    // Restore with overrides: 2 CPUs, 512 MB.
    await snapRow.getByRole('button', { name: `Restore ${snapshotId}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Restore a snapshot' });
    await dialog.waitFor();
    await dialog.getByLabel('CPUs').fill('2');
    await dialog.getByLabel('Memory (MB)').fill('512');
    await dialog.getByRole('button', { name: 'Restore' }).click();
    const restoredLine = snapshots.locator('#snapshot-result [data-restored]');
    await restoredLine.waitFor();
    const restored = await restoredLine.getAttribute('data-restored');
    assert.notEqual(restored, created);
    assert.match(await restoredLine.textContent(), /the resources asked for: 2 CPUs · 512 MB/);
    const restoredInfo = (await api(`/sandboxes/${restored}`)).body;
    assert.deepEqual([restoredInfo.status, restoredInfo.resources.cpus, restoredInfo.resources.memory_mb, restoredInfo.snapshot_id], ['running', 2, 512, snapshotId]);
    await sandboxes.locator(`#sandbox-table tr[data-sandbox-id="${restored}"] [data-resources]`).filter({ hasText: '2 CPUs · 512 MB' }).waitFor();
    // The restored sandbox has the file the first one wrote.
    assert.deepEqual(await runCommand(page, restored, 'cat /data/mark.txt'), { exitCode: 0, stdout: 'panel-42', stderr: '' });

    // Restore again with the fields left empty: it inherits 1 CPU / 1024 MB.
    await snapRow.getByRole('button', { name: `Restore ${snapshotId}` }).click();
    await dialog.waitFor();
    assert.equal(await dialog.getByLabel('CPUs').inputValue(), '');
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await snapshots.locator(`#snapshot-result [data-restored]:not([data-restored="${restored}"])`).waitFor();
    const inherited = await restoredLine.getAttribute('data-restored');
    assert.match(await restoredLine.textContent(), /inherited resources: 1 CPU · 1024 MB/);
    const inheritedInfo = (await api(`/sandboxes/${inherited}`)).body;
    assert.deepEqual([inheritedInfo.resources.cpus, inheritedInfo.resources.memory_mb], [1, 1024]);

    await sandboxes.locator('#sandbox-table tbody tr').nth(2).waitFor();
    await screenshot(page, 'panels');

    // Delete: declining the confirmation keeps the snapshot...
    await snapRow.getByRole('button', { name: `Delete ${snapshotId}` }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete this snapshot?' });
    await confirm.waitFor();
    assert.match(await confirm.textContent(), new RegExp(snapshotId));
    await confirm.getByRole('button', { name: 'Keep it' }).click();
    await confirm.waitFor({ state: 'hidden' });
    assert.equal((await api(`/snapshots/${snapshotId}`)).status, 200);
    assert.equal(await snapRow.count(), 1);
    // ...confirming deletes it, on the server and in the table.
    await snapRow.getByRole('button', { name: `Delete ${snapshotId}` }).click();
    await confirm.getByRole('button', { name: 'Delete snapshot' }).click();
    await snapshots.locator(`#snapshot-result [data-deleted="${snapshotId}"]`).waitFor();
    await snapRow.waitFor({ state: 'detached' });
    assert.equal((await api(`/snapshots/${snapshotId}`)).status, 404);

    // Terminate the three sandboxes from their rows.
    for (const id of [created, restored, inherited]) {
      await sandboxes.getByRole('button', { name: `Terminate ${id}` }).click();
      await sandboxes.locator(`#sandbox-table tr[data-sandbox-id="${id}"]`).waitFor({ state: 'detached' });
      assert.equal((await api(`/sandboxes/${id}`)).body.status, 'terminated');
    }
    await sandboxes.locator('#sandbox-empty:not([hidden])').waitFor();
    assert.deepEqual((await api('/sandboxes')).body.sandboxes, []);
    demo.assertClean();
  } finally {
    await demo.close();
    await server.stop();
  }
});
