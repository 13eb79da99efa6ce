// The connection panel: the status pill tells whether the server answers, a server that wants a
// key is reported as such until one is typed, the key stays in memory (never in storage or the
// URL), and the note on keys in a browser is on the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDemo, screenshot, startServer, useSiteAndBrowser } from './helpers.mjs';

const env = useSiteAndBrowser();

// Chromium prints a "Failed to load resource" line for each 401 a fetch gets, even a handled
// one; only those, on the list routes the page calls before the key is typed, are tolerated.
const failedLoad = (status) => (p) => p.text.startsWith(`Failed to load resource: the server responded with a status of ${status}`)
  && /^\/v1\/namespaces\/default\/(sandboxes|snapshots)$/.test(new URL(p.url).pathname);

test('a server that requires a key: refused without one, usable once it is typed, and the key is never stored', { timeout: 120_000 }, async () => {
  const key = `demo-key-${Math.random().toString(36).slice(2)}`;
  const server = await startServer({ args: ['--static', env.site.dir], env: { TENSORLAKE_LOCAL_API_KEY: key } });
  const demo = await openDemo(env.browser, server.url);
  try {
    const { page } = demo;
    const pill = page.locator('#server-pill');
    await page.locator('#server-pill[data-state="unauthorized"]').waitFor();
    assert.match(await pill.textContent(), /Key refused · HTTP 401/);
    // The panels say why they are empty.
    await page.locator('#sandboxes-error .error-box[data-status="401"]').waitFor();

    const note = page.locator('#key-note');
    assert.equal(await note.isVisible(), true);
    assert.match(await note.textContent(), /memory only/);
    assert.match(await note.textContent(), /tokenProvider/);
    assert.match(await note.textContent(), /README\.md, section Using it in a browser/);

    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('#server-pill[data-state="online"]').waitFor();
    await page.locator('#sandboxes-error .error-box').waitFor({ state: 'detached' });

    // Requests now carry the key, and the page works.
    await page.getByRole('button', { name: 'Create sandbox' }).click();
    await page.locator('#sandbox-table tbody tr').first().waitFor();
    const requests = await server.requests();
    assert.ok(requests.some((r) => r.method === 'POST' && r.path.endsWith('/sandboxes') && r.status === 200 && r.authorized));

    // The key is in memory only: not in storage, cookies, the URL, or any text on the page.
    const traces = await page.evaluate(() => JSON.stringify({
      local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie, url: location.href,
      text: document.body.innerText, title: document.getElementById('server-pill').title,
    }));
    assert.ok(!traces.includes(key), 'the key leaked outside memory');
    assert.match(await pill.getAttribute('title'), /credentials: /);
    await screenshot(page, 'connection-key');

    demo.assertClean([failedLoad(401)]);
    assert.ok(!demo.problems.some((p) => p.text.includes(key)), 'the key appeared in the console');
  } finally {
    await demo.close();
    await server.stop();
  }
});

test('an API URL nobody answers on shows the pill as unreachable, and a bad URL is refused inline', { timeout: 120_000 }, async () => {
  const server = await startServer({ args: ['--static', env.site.dir] });
  const demo = await openDemo(env.browser, server.url);
  try {
    const { page } = demo;
    await page.locator('#server-pill[data-state="online"]').waitFor();

    // Connection refused: a port below the ephemeral range, so no test server started in
    // parallel can take it (a port freed a moment ago could be, and then it answers).
    const deadUrl = 'http://127.0.0.1:1023';
    await page.getByLabel('API URL').fill(deadUrl);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('#server-pill[data-state="offline"]').waitFor();
    assert.match(await page.locator('#server-pill').textContent(), /Server unreachable/);

    await page.getByLabel('API URL').fill('not a url');
    await page.getByRole('button', { name: 'Apply' }).click();
    const box = page.locator('#connection-error .error-box');
    await box.waitFor();
    assert.equal(await box.locator('.err-class').textContent(), 'TypeError');
    assert.match(await box.locator('.err-message').textContent(), /apiUrl/);

    // Back to the page's own server.
    await page.getByLabel('API URL').fill(server.url);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('#server-pill[data-state="online"]').waitFor();
    await box.waitFor({ state: 'detached' });

    demo.assertClean([(p) => p.text.includes('net::ERR_CONNECTION_REFUSED') && p.url.startsWith(deadUrl)]);
  } finally {
    await demo.close();
    await server.stop();
  }
});
