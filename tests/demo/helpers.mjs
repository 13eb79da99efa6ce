// Shared by the demo tests: assemble the site (www/ + pkg/, as `npm start` does) or build it with
// Vite, start a local server that serves it, drive headless Chromium, collect console errors and
// uncaught errors, save screenshots, and poll for conditions.
import { chromium } from 'playwright-core';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { ROOT, startServer } from '../js/helpers/server.mjs';

export { ROOT, startServer };

export const SHOTS = join(ROOT, 'test-output', 'demo');

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

function requirePackage() {
  const entry = join(ROOT, 'pkg', 'web', 'auto.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: build the package first (npm run build)`);
}

/** A fresh copy of the site exactly as scripts/start.sh assembles it: www/ at /, pkg/ at /pkg/. */
export function assembleSite() {
  requirePackage();
  const dir = mkdtempSync(join(tmpdir(), 'tl-demo-site-'));
  cpSync(join(ROOT, 'www'), dir, { recursive: true });
  cpSync(join(ROOT, 'pkg'), join(dir, 'pkg'), { recursive: true });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The same page bundled by Vite 7 (tests/demo/vite.config.mjs) into a temporary folder. */
export async function buildViteSite() {
  requirePackage();
  const dir = mkdtempSync(join(tmpdir(), 'tl-demo-vite-'));
  const { build } = await import('vite');
  const previous = process.env.DEMO_VITE_OUT;
  process.env.DEMO_VITE_OUT = dir;
  try {
    await build({ configFile: join(ROOT, 'tests', 'demo', 'vite.config.mjs'), logLevel: 'error' });
  } finally {
    if (previous === undefined) delete process.env.DEMO_VITE_OUT;
    else process.env.DEMO_VITE_OUT = previous;
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * For a test file: one site (built by `makeSite`, the assembled one by default) and one Chromium,
 * made before its tests and removed after them; tests read `env.site` and `env.browser`.
 */
export function useSiteAndBrowser(makeSite = assembleSite) {
  const env = { site: undefined, browser: undefined };
  before(async () => {
    env.site = await makeSite();
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    env.site?.remove();
  });
  return env;
}

export function launchBrowser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 60_000 });
}

/**
 * A page on the demo, with every console error and uncaught error recorded. `assertClean()`
 * fails the test if there were any, except console errors that `allowed` predicates accept
 * (used only for the "Failed to load resource" line Chromium prints for a fault a test injected
 * on purpose).
 */
export async function openDemo(browser, url, { viewport = { width: 1280, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
  const page = await context.newPage();
  page.setDefaultTimeout(45_000);
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push({ kind: 'console', text: msg.text(), url: msg.location()?.url ?? '' });
  });
  page.on('pageerror', (error) => problems.push({ kind: 'pageerror', text: String(error?.stack ?? error), url: '' }));
  await page.goto(url + '/');
  await page.locator('body[data-ready="true"]').waitFor({ timeout: 30_000 });
  return {
    page,
    context,
    problems,
    assertClean(allowed = []) {
      const unexpected = problems.filter((p) => !(p.kind === 'console' && allowed.some((ok) => ok(p))));
      assert.deepEqual(unexpected, [], 'console errors or uncaught errors on the page');
    },
    close: () => context.close(),
  };
}

/** Saves a full-page screenshot as test-output/demo/<name>.png and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true, animations: 'disabled' });
  return path;
}

/** Polls `fn` until it returns a truthy value (which it resolves with), or fails after `timeout` ms. */
export async function until(fn, { timeout = 15_000, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${message} (last: ${last})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Runs the guided tour on `page` and checks what it shows; returns the texts it compared and
 * the snapshot statuses the page showed.
 * Shared by the plain-site test and the Vite-build test.
 */
export async function runTour(page) {
  const start = page.getByRole('button', { name: 'Start the tour' });
  // Started from the keyboard, as a keyboard user would.
  await start.focus();
  await page.keyboard.press('Enter');

  const steps = page.locator('#tour-steps');
  await steps.locator('[data-step="snapshot"][data-state="running"], [data-step="snapshot"][data-state="done"]').waitFor();
  await page.locator('#tour-steps[data-state="done"], #tour-steps[data-state="failed"]').waitFor({ timeout: 90_000 });
  const failure = await page.locator('#tour-steps .error-box').allTextContents();
  assert.deepEqual(failure, [], 'a tour step failed');
  assert.equal(await steps.getAttribute('data-state'), 'done');
  for (const id of ['create', 'write', 'snapshot', 'restore', 'read', 'cleanup']) {
    assert.equal(await steps.locator(`[data-step="${id}"]`).getAttribute('data-state'), 'done', `step ${id}`);
    // Each step shows the call it makes.
    assert.match(await steps.locator(`[data-step="${id}"] pre.code`).textContent(), /await /, `step ${id} shows its call`);
  }

  const written = await steps.locator('[data-step="write"] pre[data-file="written"]').textContent();
  const original = await steps.locator('[data-step="read"] pre[data-file="original"]').textContent();
  const restored = await steps.locator('[data-step="read"] pre[data-file="restored"]').textContent();
  assert.match(written, /^run,city,temp_c,observed_at\n[0-9a-f]{8},Lisbon,/);
  assert.equal(original, written);
  assert.equal(restored, written, 'the restored sandbox returned different contents');
  assert.equal(await steps.locator('[data-step="read"] [data-match]').getAttribute('data-match'), 'true');
  assert.match(await steps.locator('[data-step="read"] [data-match]').textContent(), /Identical/);

  const snapshotStep = steps.locator('[data-step="snapshot"]');
  assert.equal(await snapshotStep.locator('.progress').getAttribute('data-state'), 'done');
  assert.equal(await snapshotStep.locator('[role="progressbar"]').getAttribute('aria-valuenow'), '100');
  // The statuses the page showed, in order. (With the fast test timings a poll can miss a
  // short stage, so only their order and the last one are certain here.)
  const seen = (await snapshotStep.locator('.progress').getAttribute('data-seen')).split(' ');
  const stages = ['in_progress', 'local_ready', 'completed'];
  assert.deepEqual(seen, stages.filter((s) => seen.includes(s)), `statuses out of order: ${seen}`);
  assert.equal(seen.at(-1), 'completed');
  assert.match(await snapshotStep.locator('.progress-line').textContent(), /completed after \d+\.\d s/);

  assert.match(await steps.locator('[data-step="restore"] [data-resources]').textContent(), /^4 CPUs · 2048 MB$/);
  assert.match(await page.locator('#tour-status').textContent(), /Tour complete in/);
  return { written, restored, seen };
}
