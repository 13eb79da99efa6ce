// The example script runs the documented workflow against a local server and succeeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { startServer, ROOT } from './helpers/server.mjs';

test('examples/workflow.mjs completes against the local server', async () => {
  const server = await startServer();
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'examples', 'workflow.mjs')], {
      cwd: ROOT,
      env: { ...process.env, TENSORLAKE_API_URL: '', LOCAL_API_URL: server.url },
    });
    assert.match(stdout, /4 CPUs, 2048 MB/);
    assert.match(stdout, /city,temp\n  Lisbon,21/);
    assert.match(stdout, /done/);
  } finally {
    await server.stop();
  }
});
