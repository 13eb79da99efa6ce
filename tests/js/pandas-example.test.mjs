// Tensorlake's documented snapshot example (examples/pandas-snapshot.mjs) runs against a fresh
// local server: pip install in a sandbox with network, a file under /data, snapshotAndWait, a
// restore with 4 CPUs and 2048 MB, the file and the installed package still there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { startServer, ROOT } from './helpers/server.mjs';

async function runExample(packages) {
  const server = await startServer();
  try {
    const env = { ...process.env, TENSORLAKE_API_URL: '', LOCAL_API_URL: server.url };
    if (packages) env.PACKAGES = packages;
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'examples', 'pandas-snapshot.mjs')], {
      cwd: ROOT,
      env,
      timeout: 900_000,
    });
    return stdout;
  } finally {
    await server.stop();
  }
}

test('the documented example with a small package (six)', { timeout: 900_000 }, async () => {
  const stdout = await runExample('six');
  assert.match(stdout, /4 CPUs, 2048 MB/);
  assert.match(stdout, /^,a\n0,1\n1,2\n2,3/m);
  assert.match(stdout, /^six \d+\.\d+/m);
});

test('the documented example verbatim: pip install numpy pandas', { timeout: 900_000 }, async () => {
  const stdout = await runExample(undefined);
  assert.match(stdout, /4 CPUs, 2048 MB/);
  assert.match(stdout, /^,a\n0,1\n1,2\n2,3/m);
  assert.match(stdout, /^pandas \d+\.\d+/m);
});
