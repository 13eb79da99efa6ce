// The built package in a real browser page (headless Chromium, the `browser` entry): the apiKey
// guard, tokenProvider, and that the key stays out of what the page can see of an error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, cpSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, ROOT } from './helpers/server.mjs';

const KEY = 'tl_apiKey_BROWSER_SECRET_42';
let server;
let site;
let browser;
let page;
const consoleErrors = [];

before(async () => {
  site = mkdtempSync(join(tmpdir(), 'tl-browser-'));
  cpSync(join(ROOT, 'pkg'), join(site, 'pkg'), { recursive: true, dereference: true });
  writeFileSync(join(site, 'index.html'), '<!doctype html><title>t</title><script type="module">import * as lib from "./pkg/web/auto.js"; window.lib = lib;</script>');
  server = await startServer({ args: ['--static', site, '--api-key', KEY] });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage();
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(server.url + '/index.html');
  await page.waitForFunction(() => window.lib !== undefined);
});
after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(site, { recursive: true, force: true });
});

test('a raw apiKey in a browser throws a SandboxError that says why and what to do', async () => {
  const result = await page.evaluate((key) => {
    try {
      new window.lib.SandboxClient({ apiUrl: location.origin, apiKey: key });
      return { threw: false };
    } catch (e) {
      return { threw: true, isSandboxError: e instanceof window.lib.SandboxError, name: e.name, code: e.code, message: e.message, json: JSON.stringify(e), stack: String(e.stack) };
    }
  }, KEY);
  assert.equal(result.threw, true);
  assert.equal(result.isSandboxError, true);
  assert.equal(result.code, 'BROWSER_API_KEY');
  assert.match(result.message, /tokenProvider/);
  assert.match(result.message, /dangerouslyAllowBrowser/);
  for (const text of [result.message, result.json, result.stack]) assert.ok(!text.includes(KEY));
});

test('with dangerouslyAllowBrowser the key works; tokenProvider needs no key in the page', async () => {
  const result = await page.evaluate(async (key) => {
    const { SandboxClient } = window.lib;
    const consenting = new SandboxClient({ apiUrl: location.origin, apiKey: key, dangerouslyAllowBrowser: true });
    const a = await consenting.listSnapshots();
    let calls = 0;
    const viaToken = new SandboxClient({ apiUrl: location.origin, tokenProvider: async () => { calls += 1; return key; } });
    const sandbox = await viaToken.createAndConnect();
    const out = await sandbox.commands.run('echo from-the-browser');
    await sandbox.terminate();
    const anonymous = new SandboxClient({ apiUrl: location.origin });
    const denied = await anonymous.listSnapshots().catch((e) => ({ name: e.name, status: e.statusCode }));
    return { listed: Array.isArray(a), stdout: out.stdout, calls, denied, described: JSON.stringify(consenting) + String(consenting) };
  }, KEY);
  assert.equal(result.listed, true);
  assert.equal(result.stdout, 'from-the-browser');
  assert.equal(result.calls, 3, 'the token provider is asked before each of the three requests');
  assert.deepEqual(result.denied, { name: 'RemoteAPIError', status: 401 });
  assert.ok(!result.described.includes(KEY));
  assert.deepEqual(consoleErrors, []);
});
