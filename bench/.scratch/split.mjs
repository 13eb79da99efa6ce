import http from 'node:http';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const url = process.argv[2]; const ns = 'ab';
const list = await fetch(`${url}/v1/namespaces/${ns}/snapshots`).then((r) => r.json());
const id = list.snapshots[0].id;
const { SandboxClient } = await import('tensorlake-snapshots');
const { nodeFetch } = require('tensorlake-snapshots/package.json') && require(process.cwd() + '/pkg/node/transport.cjs');
const direct = nodeFetch[Symbol.for('tensorlake-snapshots.exchange')];
const c = SandboxClient.forLocalhost({ apiUrl: url, namespace: ns });
const agent = new http.Agent({ keepAlive: true });
const u = `${url}/v1/namespaces/${ns}/snapshots/${id}`;
const floor = () => new Promise((resolve, reject) => {
  http.get(u, { agent }, (res) => { let t = ''; res.setEncoding('utf8'); res.on('data', (d) => { t += d; }); res.on('end', () => resolve(JSON.parse(t))); }).on('error', reject);
});
const H = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'X-Tensorlake-Request-Timeout-Ms': '300000', 'User-Agent': 'x/1' };
const impls = {
  floor: async () => (await floor()).id,
  transport: async () => JSON.parse((await direct(u, 'GET', H, undefined, undefined, false))[3]).id,
  ours: async () => (await c.getSnapshot(id)).snapshotId,
};
const N = 2000;
for (const k of Object.keys(impls)) for (let i = 0; i < 3000; i++) await impls[k]();
const res = Object.fromEntries(Object.keys(impls).map((k) => [k, []]));
for (let r = 0; r < 6; r++) for (const k of Object.keys(impls)) {
  const c0 = process.cpuUsage(); const t0 = performance.now(); for (let i = 0; i < N; i++) if ((await impls[k]()) !== id) throw 0;
  const cu = process.cpuUsage(c0); res[k].push([(performance.now() - t0) / N * 1000, (cu.user + cu.system) / N]);
}
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
console.log(process.version, Object.entries(res).map(([k, v]) => `${k} wall ${med(v.map((x) => x[0])).toFixed(0)} cpu ${med(v.map((x) => x[1])).toFixed(0)}`).join(' | '));
