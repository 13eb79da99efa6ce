// The published package: size budget, one shared .wasm, and the entry points each runtime picks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from './helpers/server.mjs';

const PKG = join(ROOT, 'pkg');
const WASM_GZIP_BUDGET = 80 * 1024;
const TARBALL_BUDGET = 150 * 1024;

test(`the wasm is at most ${WASM_GZIP_BUDGET / 1024} KB gzipped`, () => {
  const wasm = readFileSync(join(PKG, 'tensorlake_snapshots_bg.wasm'));
  const gzipped = gzipSync(wasm, { level: 9 }).length;
  console.log(`# wasm: ${wasm.length} bytes, ${gzipped} bytes gzipped (budget ${WASM_GZIP_BUDGET})`);
  assert.ok(gzipped <= WASM_GZIP_BUDGET, `${gzipped} bytes gzipped is over the budget`);
});

test(`npm pack is at most ${TARBALL_BUDGET / 1024} KB and ships exactly one .wasm`, () => {
  const [report] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', PKG], { cwd: ROOT, encoding: 'utf8' }));
  console.log(`# npm pack: ${report.size} bytes packed, ${report.unpackedSize} unpacked, ${report.entryCount} files`);
  assert.ok(report.size <= TARBALL_BUDGET, `${report.size} bytes is over the budget`);
  const files = report.files.map((f) => f.path);
  assert.deepEqual(files.filter((f) => f.endsWith('.wasm')), ['tensorlake_snapshots_bg.wasm']);
  for (const needed of ['package.json', 'README.md', 'index.d.ts', 'node/index.cjs', 'node/index.mjs', 'web/auto.js', 'web/index.js', 'web/index.d.ts']) {
    assert.ok(files.includes(needed), `${needed} is in the tarball`);
  }
});

test('Node resolves require and import to the same module instance', async () => {
  const require = createRequire(import.meta.url);
  assert.equal(require.resolve('tensorlake-snapshots'), join(PKG, 'node', 'index.cjs'));
  const viaRequire = require('tensorlake-snapshots');
  const viaImport = await import('tensorlake-snapshots');
  assert.equal(viaImport.SandboxClient, viaRequire.SandboxClient);
  assert.equal(viaImport.SandboxError, viaRequire.SandboxError);
  assert.equal(viaImport.createError, undefined, 'the internal error factory is not exported');
  const names = Object.keys(viaRequire).sort();
  assert.deepEqual(names, [
    'Commands', 'RemoteAPIError', 'Sandbox', 'SandboxClient', 'SandboxConnectionError', 'SandboxError',
    'SandboxNotFoundError', 'SnapshotFailedError', 'SnapshotNotFoundError', 'SnapshotWatch', 'WaitTimeoutError',
  ]);
});

test('the ./web entry initialises from bytes, in Node too', async () => {
  const web = await import('tensorlake-snapshots/web');
  assert.equal(typeof web.default, 'function');
  web.initSync({ module: readFileSync(join(PKG, 'tensorlake_snapshots_bg.wasm')) });
  const client = web.SandboxClient.forLocalhost();
  assert.equal(client.toJSON().apiUrl, 'http://127.0.0.1:8900');
  const err = await client.getSnapshot('').catch((e) => e);
  assert.ok(err instanceof TypeError);
});
