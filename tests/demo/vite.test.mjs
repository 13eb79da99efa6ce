// The same page bundled with Vite 7 (the way an application would use the package from npm)
// passes the same tour test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildViteSite, openDemo, runTour, screenshot, startServer, useSiteAndBrowser } from './helpers.mjs';

const env = useSiteAndBrowser(buildViteSite);

test('the Vite build of the page runs the guided tour to the same result', { timeout: 120_000 }, async () => {
  // It really is a bundle: no import map, no pkg/ folder, the wasm emitted as a hashed asset.
  const html = readFileSync(join(env.site.dir, 'index.html'), 'utf8');
  assert.doesNotMatch(html, /importmap/);
  const assets = readdirSync(join(env.site.dir, 'assets'));
  assert.ok(assets.some((f) => /^tensorlake_snapshots_bg-[\w-]+\.wasm$/.test(f)), `no wasm asset in ${assets}`);
  assert.deepEqual(readdirSync(env.site.dir).filter((f) => f === 'pkg'), []);

  const server = await startServer({ args: ['--static', env.site.dir] });
  const demo = await openDemo(env.browser, server.url);
  try {
    const { page } = demo;
    await runTour(page);
    assert.match(server.log(), /GET \/assets\/tensorlake_snapshots_bg-[\w-]+\.wasm 200/);
    assert.doesNotMatch(server.log(), /GET \/pkg\//);
    await screenshot(page, 'vite-tour');
    demo.assertClean();
  } finally {
    await demo.close();
    await server.stop();
  }
});
