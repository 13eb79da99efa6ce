// followStdout in a real browser page (headless Chromium, the `browser` entry): the output arrives
// through fetch's streaming body, line by line while the process runs, and an abort stops it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, cpSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, ROOT } from './helpers/server.mjs';

let server;
let site;
let browser;
let page;

before(async () => {
  site = mkdtempSync(join(tmpdir(), 'tl-follow-'));
  cpSync(join(ROOT, 'pkg'), join(site, 'pkg'), { recursive: true, dereference: true });
  writeFileSync(join(site, 'index.html'), '<!doctype html><title>t</title><script type="module">import * as lib from "./pkg/web/auto.js"; window.lib = lib;</script>');
  server = await startServer({ args: ['--static', site] });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage();
  await page.goto(server.url + '/index.html');
  await page.waitForFunction(() => window.lib !== undefined);
});
after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(site, { recursive: true, force: true });
});

test('followStdout streams in a browser: a line arrives while the process waits, the loop ends at exit', { timeout: 60_000 }, async () => {
  const result = await page.evaluate(async () => {
    const client = window.lib.SandboxClient.forLocalhost({ apiUrl: location.origin });
    const sandbox = await client.createAndConnect();
    // The second line waits for a file written only after the first line has been seen.
    const p = await sandbox.startProcess('sh', { args: ['-c', 'echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second'] });
    const seen = [];
    let runningAtFirst;
    for await (const event of sandbox.followStdout(p.pid)) {
      seen.push([event.line, event.stream, event.timestamp instanceof Date]);
      if (event.line === 'first') {
        runningAtFirst = (await sandbox.getProcess(p.pid)).status;
        await sandbox.writeFile('/tmp/go', '');
      }
    }
    const ticker = await sandbox.startProcess('sh', { args: ['-c', 'while true; do echo tick; sleep 0.05; done'] });
    const controller = new AbortController();
    const reason = new Error('enough');
    let count = 0;
    let aborted;
    try {
      for await (const event of sandbox.followStdout(ticker.pid, { signal: controller.signal })) {
        count += 1;
        if (count === 3) controller.abort(reason);
      }
    } catch (e) {
      aborted = e === reason;
    }
    await sandbox.killProcess(ticker.pid);
    await sandbox.terminate();
    return { seen, runningAtFirst, count, aborted };
  });
  assert.deepEqual(result.seen, [['first', 'stdout', true], ['second', 'stdout', true]]);
  assert.equal(result.runningAtFirst, 'running');
  assert.equal(result.count, 3);
  assert.equal(result.aborted, true);
});
