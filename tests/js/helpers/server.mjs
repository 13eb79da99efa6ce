// Starts a real tensorlake-local server on a free loopback port with its own data directory, and
// wraps its /_admin/ API. Every test file gets its own server, so files can run in parallel.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function serverBinary() {
  const bin = process.env.TENSORLAKE_LOCAL_BIN || join(ROOT, 'target', 'release', 'tensorlake-local');
  if (!existsSync(bin)) throw new Error(`tensorlake-local not built at ${bin}: run npm test (or cargo build --release -p tensorlake-local)`);
  return bin;
}

/**
 * @param {{ args?: string[], fast?: boolean, env?: Record<string,string> }} [options]
 */
export async function startServer({ args = [], fast = true, env = {} } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tl-test-'));
  const timing = fast ? ['--snapshot-local-ready-ms', '50', '--snapshot-completed-ms', '100'] : [];
  const child = spawn(serverBinary(), ['--port', '0', '--data-dir', dataDir, ...timing, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}): ${stderr}`)); });
  });
  child.removeAllListeners('exit');
  // /_admin needs the server's key when it has one (the last --api-key wins, as in the server).
  const keyAt = args.lastIndexOf('--api-key');
  const key = keyAt >= 0 ? args[keyAt + 1] : env.TENSORLAKE_LOCAL_API_KEY;
  const admin = async (method, path, body) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    const res = await fetch(url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  return {
    url,
    dataDir,
    child,
    /** The server's request log so far (stderr). */
    log: () => stderr,
    fault: (spec) => admin('POST', '/_admin/faults', spec),
    clearFaults: () => admin('DELETE', '/_admin/faults'),
    failNextSnapshot: (sandboxId, error) => admin('POST', '/_admin/snapshot-failures', { sandbox_id: sandboxId, error }),
    timing: (t) => admin('PUT', '/_admin/timing', t),
    requests: async () => (await admin('GET', '/_admin/requests')).requests,
    clearRequests: () => admin('DELETE', '/_admin/requests'),
    seedSnapshots: (fromSnapshotId, count) => admin('POST', '/_admin/seed-snapshots', { from_snapshot_id: fromSnapshotId, count }),
    reset: () => admin('POST', '/_admin/reset'),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
