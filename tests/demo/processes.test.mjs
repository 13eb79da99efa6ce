// The demo's background processes and suspend/resume, driven like a user would: start a command
// that prints, waits for a file and prints again, see its first line live (before it can exit),
// let it finish, kill another; suspend a sandbox (its processes freeze: the server says so) and
// resume it. Each step is checked against the server's own API too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDemo, screenshot, startServer, until, useSiteAndBrowser } from './helpers.mjs';

const env = useSiteAndBrowser();

test('processes: start, follow live output, kill; suspend and resume buttons', { timeout: 120_000 }, async () => {
  const server = await startServer({ args: ['--static', env.site.dir] });
  const api = async (method, path, body) => {
    const res = await fetch(`${server.url}/v1/namespaces/default${path}`, { method, body, headers: body ? { 'content-type': 'application/json' } : {} });
    return res.status === 200 || res.status === 201 ? res.json() : res.status;
  };
  const daemon = async (path, sandboxId, init = {}) => {
    const res = await fetch(`${server.url}/api/v1${path}`, { ...init, headers: { 'X-Tensorlake-Sandbox-Id': sandboxId, ...(init.headers ?? {}) } });
    return res.status === 200 ? res.json() : res.status;
  };
  const demo = await openDemo(env.browser, server.url);
  try {
    const { page } = demo;
    const sandboxes = page.locator('#sandboxes');
    await sandboxes.getByRole('button', { name: 'Create sandbox' }).click();
    const sandboxId = await sandboxes.locator('#sandbox-create-result .ok-line code').textContent();
    const processes = page.locator('#processes');
    await until(async () => (await processes.getByLabel('Sandbox', { exact: true }).inputValue()) === sandboxId, { message: 'the sandbox in the processes select' });

    // A command whose second line waits for a file: the page can only show its first line if it
    // streams the output as it is written.
    await processes.getByLabel('Shell command', { exact: true }).fill('echo first-line; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo second-line; echo warn >&2');
    await processes.getByRole('button', { name: 'Start', exact: true }).click();
    const output = page.locator('#process-output');
    await output.locator('text=first-line').waitFor();
    const pid = Number(await page.locator('#process-live-pid').textContent());
    assert.equal((await daemon(`/processes/${pid}`, sandboxId)).status, 'running', 'the line arrived while the process ran');
    assert.equal(await page.locator('#process-live-state').textContent(), 'following…');
    await page.locator(`#process-table tr[data-pid="${pid}"]`).waitFor();
    await screenshot(page, 'processes-live');

    await daemon('/files?path=%2Ftmp%2Fgo', sandboxId, { method: 'PUT', body: '' });
    await page.locator('#process-live-state', { hasText: 'exited with code 0' }).waitFor();
    assert.equal(await output.locator('[data-stream="stdout"]').allTextContents().then((t) => t.join('')), 'first-line\nsecond-line\n');
    assert.equal(await output.locator('[data-stream="stderr"]').textContent(), 'warn\n');
    await until(async () => (await page.locator(`#process-table tr[data-pid="${pid}"] .badge`).textContent()) === 'exited', { message: 'the exited badge' });

    // Kill a long-running one from its row.
    await processes.getByLabel('Shell command', { exact: true }).fill('while true; do echo tick; sleep 0.2; done');
    await processes.getByRole('button', { name: 'Start', exact: true }).click();
    await output.locator('text=tick').first().waitFor();
    const ticker = Number(await page.locator('#process-live-pid').textContent());
    await page.getByRole('button', { name: `Kill ${ticker}` }).click();
    await page.locator('#process-live-state', { hasText: 'signaled' }).waitFor();
    assert.equal((await daemon(`/processes/${ticker}`, sandboxId)).status, 'signaled');

    // Suspend, then resume, from the sandbox's row.
    const row = sandboxes.locator(`#sandbox-table tr[data-sandbox-id="${sandboxId}"]`);
    await page.getByRole('button', { name: `Suspend ${sandboxId}` }).click();
    await until(async () => (await row.locator('.badge').textContent()) === 'suspended', { message: 'the suspended badge' });
    assert.equal((await api('GET', `/sandboxes/${sandboxId}`)).status, 'suspended');
    assert.equal(await daemon('/processes', sandboxId), 409, 'a suspended sandbox runs nothing');
    await screenshot(page, 'processes-suspended');
    await page.getByRole('button', { name: `Resume ${sandboxId}` }).click();
    await until(async () => (await row.locator('.badge').textContent()) === 'running', { message: 'the running badge' });
    assert.equal((await api('GET', `/sandboxes/${sandboxId}`)).status, 'running');
    demo.assertClean();
  } finally {
    await demo.close();
    await server.stop();
  }
});
