// The guided tour, in real headless Chromium, against a real local server serving the site the
// way `npm start` does: it must complete and show that the restored sandbox has the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDemo, runTour, screenshot, startServer, useSiteAndBrowser } from './helpers.mjs';

const env = useSiteAndBrowser();

test('the guided tour runs the whole workflow and shows the restored file equals what was written', { timeout: 120_000 }, async () => {
  // Default (human) timings, so each snapshot status lasts long enough to be seen.
  const server = await startServer({ args: ['--static', env.site.dir], fast: false });
  const demo = await openDemo(env.browser, server.url);
  try {
    const { page } = demo;
    assert.equal(await page.getByLabel('API URL').inputValue(), server.url);
    await page.locator('#server-pill[data-state="online"]').waitFor();

    const { seen } = await runTour(page);
    assert.deepEqual(seen, ['in_progress', 'local_ready', 'completed']);

    // What the page says happened did happen on the server: the file went up, came back down,
    // the restore asked for 4 CPUs / 2048 MB, and the clean-up left nothing behind.
    const requests = await server.requests();
    const ok = (method, path) => requests.some((r) => r.method === method && path.test(r.path) && r.status < 300);
    assert.ok(ok('PUT', /^\/api\/v1\/files$/), 'file written');
    assert.ok(ok('POST', /\/sandboxes\/[^/]+\/snapshot$/), 'snapshot taken');
    assert.ok(ok('GET', /^\/api\/v1\/files$/), 'file read');
    const api = (path) => fetch(server.url + '/v1/namespaces/default' + path).then((r) => r.json());
    assert.deepEqual((await api('/sandboxes')).sandboxes, []);
    assert.deepEqual((await api('/snapshots')).snapshots, []);

    await screenshot(page, 'tour');
    demo.assertClean();
  } finally {
    await demo.close();
    await server.stop();
  }
});

test('the page is usable on a narrow window: no sideways scrolling, tour still completes', { timeout: 120_000 }, async () => {
  const server = await startServer({ args: ['--static', env.site.dir] });
  const demo = await openDemo(env.browser, server.url, { viewport: { width: 390, height: 844 } });
  try {
    const { page } = demo;
    await runTour(page);
    // Leave a sandbox and a snapshot in the tables, to see them laid out as cards.
    await page.getByRole('button', { name: 'Create sandbox' }).click();
    await page.locator('#sandbox-table tbody tr').first().waitFor();
    await page.locator('#snapshot-form').getByRole('button', { name: 'Snapshot' }).click();
    await page.locator('#snapshot-progress .progress[data-state="done"]').waitFor();
    await page.locator('#snapshot-table tbody tr[data-status="completed"]').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 390px`);
    await screenshot(page, 'narrow');
    demo.assertClean();
  } finally {
    await demo.close();
    await server.stop();
  }
});
