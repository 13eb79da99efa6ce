// Starts a tensorlake-local for the benchmarks: a free loopback port, a throw-away data directory,
// fast snapshot timing, and its per-request log sent to /dev/null so that neither the log nor
// a pipe reading it costs CPU in any measured process.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.mjs';

export function serverBinary() {
  const bin = process.env.TENSORLAKE_LOCAL_BIN || join(ROOT, 'target', 'release', 'tensorlake-local');
  if (!existsSync(bin)) throw new Error(`tensorlake-local is not built at ${bin} (cargo build --release -p tensorlake-local)`);
  return bin;
}

/** @param {{ staticDir?: string, localReadyMs?: number, completedMs?: number }} [options] */
export async function startServer({ staticDir, localReadyMs = 20, completedMs = 20 } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tl-bench-'));
  const args = ['--port', '0', '--data-dir', dataDir,
    '--snapshot-local-ready-ms', String(localReadyMs), '--snapshot-completed-ms', String(completedMs)];
  if (staticDir) args.push('--static', staticDir);
  const child = spawn(serverBinary(), args, { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('tensorlake-local did not start within 15 s')), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); child.stdout.removeAllListeners('data'); child.stdout.resume(); resolve(m[1]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`tensorlake-local exited with ${code}`)); });
  });
  child.removeAllListeners('exit');
  // If the runner dies of an uncaught error, take the server and its data with it (Ctrl-C in a
  // terminal reaches the server directly: it shares the runner's process group).
  const cleanUp = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('exit', cleanUp);

  const call = async (method, path, body) => {
    const res = await fetch(url + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const ns = (namespace) => `/v1/namespaces/${namespace}`;

  return {
    url,
    dataDir,
    call,
    /** Creates `count` sandboxes in `namespace`, a few at a time; resolves to their ids. */
    async createSandboxes(namespace, count) {
      const ids = [];
      let next = 0;
      const worker = async () => {
        while (next < count) {
          next += 1;
          const created = await call('POST', `${ns(namespace)}/sandboxes`, { resources: { cpus: 1, memory_mb: 512 } });
          ids.push(created.sandbox_id);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      return ids;
    },
    /** Snapshots a sandbox and polls until the snapshot is completed; resolves to its record. */
    async snapshotCompleted(namespace, sandboxId) {
      const { snapshot_id: id } = await call('POST', `${ns(namespace)}/sandboxes/${sandboxId}/snapshot`);
      for (let i = 0; i < 500; i++) {
        const info = await call('GET', `${ns(namespace)}/snapshots/${id}`);
        if (info.status === 'completed') return info;
        if (info.status === 'failed') throw new Error(`snapshot ${id} failed: ${info.error}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`snapshot ${id} did not complete`);
    },
    seedSnapshots: (fromSnapshotId, count) => call('POST', '/_admin/seed-snapshots', { from_snapshot_id: fromSnapshotId, count }),
    async stop() {
      process.removeListener('exit', cleanUp);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
