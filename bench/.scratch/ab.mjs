// In-process A/B: ours vs node:http+JSON.parse, alternating blocks.
import http from 'node:http';
const url = process.argv[2];
const ns = 'ab';
const post = (path, body) => fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json());
const sb = await post(`/v1/namespaces/${ns}/sandboxes`, { resources: { cpus: 1, memory_mb: 512 } });
const snap = await post(`/v1/namespaces/${ns}/sandboxes/${sb.sandbox_id}/snapshot`, {});
const id = snap.snapshot_id;
for (;;) { const s = await fetch(`${url}/v1/namespaces/${ns}/snapshots/${id}`).then((r) => r.json()); if (s.status === 'completed') break; await new Promise((r) => setTimeout(r, 50)); }
const { SandboxClient } = await import('tensorlake-snapshots');
const c = SandboxClient.forLocalhost({ apiUrl: url, namespace: ns });
const agent = new http.Agent({ keepAlive: true });
const base = `${url}/v1/namespaces/${ns}`;
const floor = (path) => new Promise((resolve, reject) => {
  http.get(base + path, { agent }, (res) => { let t = ''; res.setEncoding('utf8'); res.on('data', (d) => { t += d; }); res.on('end', () => resolve(JSON.parse(t))); }).on('error', reject);
});
const impls = { ours: async () => (await c.getSnapshot(id)).snapshotId, floor: async () => (await floor(`/snapshots/${id}`)).id };
const N = Number(process.argv[3] || 2000);
for (const k of Object.keys(impls)) for (let i = 0; i < 3000; i++) await impls[k]();
const res = { ours: [], floor: [] };
for (let r = 0; r < 6; r++) for (const k of r % 2 ? ['ours', 'floor'] : ['floor', 'ours']) {
  const t0 = performance.now(); for (let i = 0; i < N; i++) if ((await impls[k]()) !== id) throw 0; res[k].push((performance.now() - t0) / N * 1000);
}
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
console.log(process.version, 'ours', med(res.ours).toFixed(0), 'floor', med(res.floor).toFixed(0), 'ratio', (med(res.ours) / med(res.floor)).toFixed(2));
