// The hand-written floor every per-call figure is measured against: node:http with a keep-alive
// agent, JSON.parse, and (for listings) a plain JS mapping to the records listSnapshots returns.
import http from 'node:http';

/** A `getJson(path)` over node:http under `base`, through one keep-alive agent. */
export function nodeHttpJson(base) {
  const agent = new http.Agent({ keepAlive: true });
  return (path) => new Promise((resolve, reject) => {
    http.get(base + path, { agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('error', reject);
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`GET ${path}: ${res.statusCode}`))));
    }).on('error', reject);
  });
}

/** A wire snapshot as our SnapshotInfo: camelCase keys and a Date. */
export const toInfo = (s) => ({
  snapshotId: s.id,
  namespace: s.namespace,
  sandboxId: s.sandbox_id,
  baseImage: s.base_image,
  status: s.status,
  snapshotType: s.snapshot_type,
  error: s.error,
  snapshotUri: s.snapshot_uri,
  snapshotFormatVersion: s.snapshot_format_version,
  sizeBytes: s.size_bytes,
  rootfsDiskBytes: s.rootfs_disk_bytes,
  createdAt: s.created_at === undefined ? undefined : new Date(s.created_at),
});
