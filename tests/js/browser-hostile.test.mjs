// The hostile-server classes in headless Chromium: the browser entry reads bodies through the
// page's own fetch (which undoes gzip and deflate itself), so the limit is enforced on the
// decoded stream there. Same origin, so no CORS is involved.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, cpSync, rmSync, writeFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from './helpers/server.mjs';
import { startHostileServer } from './helpers/hostile-server.mjs';

let site;
let hostile;
let browser;
let page;

before(async () => {
  site = realpathSync(mkdtempSync(join(tmpdir(), 'tl-hostile-')));
  cpSync(join(ROOT, 'pkg'), join(site, 'pkg'), { recursive: true, dereference: true });
  writeFileSync(join(site, 'index.html'), '<!doctype html><title>t</title><script type="module">import * as lib from "./pkg/web/auto.js"; window.lib = lib;</script>');
  hostile = await startHostileServer({ staticDir: site });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage();
  await page.goto(`${hostile.url}/index.html`);
  await page.waitForFunction(() => window.lib !== undefined);
});
after(async () => {
  await browser?.close();
  await hostile?.stop();
  rmSync(site, { recursive: true, force: true });
});

test('Chromium: bodies over maxResponseBytes fail at once as RESPONSE_TOO_LARGE, compressed or not', async () => {
  // Chromium undoes br only over HTTPS, so the brotli bomb is left to the Node transport's tests.
  const ids = hostile.oversized.filter((id) => id !== 'br');
  const results = await page.evaluate(async (ids) => {
    const client = new window.lib.SandboxClient({ apiUrl: location.origin, maxRetries: 1, maxResponseBytes: 4 * 1024 * 1024 });
    const out = {};
    for (const id of ids) {
      const started = performance.now();
      const err = await client.getSnapshot(id).then(() => null, (e) => e);
      out[id] = { code: err && err.code, sandboxError: err instanceof window.lib.SandboxError, message: err && err.message, ms: performance.now() - started };
    }
    out.heap = performance.memory ? performance.memory.usedJSHeapSize : 0;
    return out;
  }, ids);
  for (const id of ids) {
    assert.equal(results[id].sandboxError, true, `${id}: ${results[id].message}`);
    assert.equal(results[id].code, 'RESPONSE_TOO_LARGE', `${id}: ${results[id].message}`);
    assert.ok(results[id].ms < 10_000, `${id} took ${results[id].ms} ms`);
  }
  assert.ok(results.heap < 200 * 1024 * 1024, `the page holds ${results.heap} bytes of JS heap`);
});

test('Chromium: a big error page gives a short responseMessage', async () => {
  const result = await page.evaluate(async () => {
    const client = new window.lib.SandboxClient({ apiUrl: location.origin, maxRetries: 0 });
    const err = await client.getSnapshot('big-error').then(() => null, (e) => e);
    return { status: err.statusCode, length: err.responseMessage.length };
  });
  assert.equal(result.status, 400);
  assert.ok(result.length <= 16 * 1024, `${result.length} chars`);
});
