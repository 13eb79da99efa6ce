const { SandboxClient } = await import('tensorlake-snapshots');
const body = JSON.stringify({ id: 'snap-1', namespace: 'ab', sandbox_id: 'sbx-1', base_image: 'img', status: 'completed', error: null, snapshot_type: 'filesystem', snapshot_uri: 's3://x', snapshot_format_version: 'v2', size_bytes: 123, rootfs_disk_bytes: 456, created_at: 1796040000000 });
const fake = () => {}; fake[Symbol.for('tensorlake-snapshots.exchange')] = () => new Promise((r) => setImmediate(() => r([200, 'application/json', null, body])));
const js = () => new Promise((r) => setImmediate(() => r([200, 'application/json', null, body])));
const c = SandboxClient.forLocalhost({ apiUrl: 'http://127.0.0.1:1', namespace: 'ab', fetch: fake });
const map = (s) => ({ snapshotId: s.id, namespace: s.namespace, sandboxId: s.sandbox_id, baseImage: s.base_image, status: s.status, snapshotType: s.snapshot_type, error: s.error, snapshotUri: s.snapshot_uri, snapshotFormatVersion: s.snapshot_format_version, sizeBytes: s.size_bytes, rootfsDiskBytes: s.rootfs_disk_bytes, createdAt: new Date(s.created_at) });
const impls = { ours: async () => (await c.getSnapshot('snap-1')).snapshotId, js: async () => map(JSON.parse((await js())[3])).snapshotId };
for (const k in impls) for (let i = 0; i < 5000; i++) await impls[k]();
const N = 5000; const res = { ours: [], js: [] };
for (let r = 0; r < 6; r++) for (const k in impls) { const c0 = process.cpuUsage(); for (let i = 0; i < N; i++) await impls[k](); const cu = process.cpuUsage(c0); res[k].push((cu.user + cu.system) / N); }
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
console.log(process.version, 'cpu us/call: ours', med(res.ours).toFixed(1), 'js', med(res.js).toFixed(1));
