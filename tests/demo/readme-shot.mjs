// Regenerates docs/demo.png, the README's picture of the demo: the guided tour, run to the end
// against a fresh local server with its default (human) timings.
//
//   node tests/demo/readme-shot.mjs
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, assembleSite, launchBrowser, openDemo, runTour, startServer } from './helpers.mjs';

const site = assembleSite();
const server = await startServer({ args: ['--static', site.dir], fast: false });
const browser = await launchBrowser();
try {
  const demo = await openDemo(browser, server.url, { viewport: { width: 1100, height: 900 } });
  await runTour(demo.page);
  demo.assertClean();
  mkdirSync(join(ROOT, 'docs'), { recursive: true });
  const path = join(ROOT, 'docs', 'demo.png');
  await demo.page.locator('#tour').screenshot({ path, animations: 'disabled' });
  console.log(`wrote ${path}`);
} finally {
  await browser.close();
  await server.stop();
  site.remove();
}
