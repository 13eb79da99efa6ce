import http from 'node:http';
const url = process.argv[2]; const ns = 'ab'; const which = process.argv[3];
const list = await fetch(`${url}/v1/namespaces/${ns}/snapshots`).then((r) => r.json());
const id = list.snapshots[0].id;
const { SandboxClient } = await import('tensorlake-snapshots');
const c = SandboxClient.forLocalhost({ apiUrl: url, namespace: ns });
const agent = new http.Agent({ keepAlive: true });
const floor = (path) => new Promise((resolve, reject) => {
  http.get(`${url}/v1/namespaces/${ns}` + path, { agent }, (res) => { let t = ''; res.setEncoding('utf8'); res.on('data', (d) => { t += d; }); res.on('end', () => resolve(JSON.parse(t))); }).on('error', reject);
});
const f = which === 'floor' ? async () => (await floor(`/snapshots/${id}`)).id : async () => (await c.getSnapshot(id)).snapshotId;
for (let i = 0; i < 3000; i++) await f();
const cpu0 = process.cpuUsage(); const t0 = performance.now();
for (let i = 0; i < 5000; i++) await f();
const t = performance.now() - t0; const cu = process.cpuUsage(cpu0);
console.log(which, (t / 5000 * 1000).toFixed(0), 'us/call wall', ((cu.user + cu.system) / 5000).toFixed(0), 'us/call cpu');
