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

test('the wasm names no path of the machine that built it', () => {
  // Panic locations name source files; a dependency's used to be under the builder's Cargo home.
  const text = readFileSync(join(PKG, 'tensorlake_snapshots_bg.wasm')).toString('latin1');
  for (const path of [process.env.HOME, process.env.CARGO_HOME, ROOT, '/.cargo/', '/registry/src/']) {
    if (path && path.length > 4) assert.ok(!text.includes(path), `the wasm contains ${path}`);
  }
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
    'Commands', 'ProcessOutputStream', 'RemoteAPIError', 'Sandbox', 'SandboxClient', 'SandboxConnectionError', 'SandboxError',
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

test('the glue is wasm-bindgen\'s own output, unedited, for Node and for the web', () => {
  // scripts/build.sh copies target/bindgen/{node,web}/ into pkg/; an upgrade of wasm-bindgen is
  // then a version change and a rebuild, with no string replacement to redo.
  for (const [generated, shipped] of [['node/tensorlake_snapshots.js', 'tensorlake_snapshots.js'], ['web/tensorlake_snapshots.js', 'web/tensorlake_snapshots.js']]) {
    assert.equal(readFileSync(join(PKG, shipped), 'utf8'), readFileSync(join(ROOT, 'target', 'bindgen', generated), 'utf8'), shipped);
  }
  assert.match(readFileSync(join(PKG, 'tensorlake_snapshots.js'), 'utf8'), /tensorlake_snapshots_bg\.wasm/, 'the nodejs glue reads the one .wasm next to it');
});

test('the wasm is built by the pinned stable toolchain, with no unstable flag', () => {
  const pin = readFileSync(join(ROOT, 'rust-toolchain.toml'), 'utf8');
  assert.match(pin, /^channel = "\d+\.\d+\.\d+"$/m, 'an exact stable version');
  assert.match(pin, /^targets = \[.*"wasm32-unknown-unknown".*\]$/m);
  for (const file of ['scripts/build.sh', 'scripts/setup.sh', '.cargo/config.toml', 'Cargo.toml']) {
    const text = readFileSync(join(ROOT, file), 'utf8').split('\n').filter((line) => !line.trimStart().startsWith('#')).join('\n');
    assert.doesNotMatch(text, /RUSTC_BOOTSTRAP|-Z[a-z]|build-std|immediate-abort|nightly/, file);
  }
});
