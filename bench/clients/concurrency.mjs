// 1,000 concurrent snapshot-and-wait cycles in one Node process, through our package or through
// a hand-written fetch polling loop doing the same requests (POST the snapshot, first poll at
// once, then a GET every pollInterval until local_ready or completed). Prints one JSON line:
// wall time, CPU time of this process (process.cpuUsage), peak RSS, requests sent.
//
//   node concurrency.mjs '{"impl":"ours|floor","url":...,"namespace":...,"idsFile":...,"pollInterval":0.05}'
import { readFileSync } from 'node:fs';
import net from 'node:net';

const args = JSON.parse(process.argv[2]);
const { impl, url, namespace, pollInterval } = args;
const sandboxIds = JSON.parse(readFileSync(args.idsFile, 'utf8'));

// Counts the requests each client sends: the floor calls the global fetch (undici, which also
// writes to sockets, so only fetch calls count for it); our package's Node entry goes through
// node:http (npm/node/transport.cjs), which writes each request head with a net.Socket#write whose
// data starts with the request line, so for it those writes are counted.
let requests = 0;
const realFetch = globalThis.fetch;
globalThis.fetch = function countedFetch(input, init) {
  if (impl !== 'ours') requests += 1;
  return realFetch(input, init);
};
const REQUEST_LINE = /^(GET|POST|PUT|DELETE|HEAD|PATCH) \S+ HTTP\/1\.1\r\n/;
const realWrite = net.Socket.prototype.write;
net.Socket.prototype.write = function countedWrite(data, ...rest) {
  const start = typeof data === 'string' ? data.slice(0, 300) : Buffer.isBuffer(data) ? data.toString('latin1', 0, 300) : '';
  if (impl === 'ours' && REQUEST_LINE.test(start)) requests += 1;
  return realWrite.call(this, data, ...rest);
};

const READY = new Set(['local_ready', 'completed']);
let snapshotAndWait;
if (impl === 'ours') {
  const { SandboxClient } = await import('tensorlake-snapshots');
  const client = SandboxClient.forLocalhost({ apiUrl: url, namespace });
  snapshotAndWait = async (sandboxId) => {
    const info = await client.snapshotAndWait(sandboxId, { pollInterval });
    return { id: info.snapshotId, sandboxId: info.sandboxId, status: info.status };
  };
} else if (impl === 'floor') {
  const base = `${url}/v1/namespaces/${namespace}`;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const call = async (method, path) => {
    const res = await fetch(base + path, { method });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return JSON.parse(await res.text());
  };
  snapshotAndWait = async (sandboxId) => {
    const { snapshot_id: id } = await call('POST', `/sandboxes/${sandboxId}/snapshot`);
    for (;;) {
      const info = await call('GET', `/snapshots/${id}`);
      if (READY.has(info.status)) return { id: info.id, sandboxId: info.sandbox_id, status: info.status };
      if (info.status === 'failed') throw new Error(`snapshot ${id} failed: ${info.error}`);
      await sleep(pollInterval * 1000);
    }
  };
} else {
  throw new Error(`unknown impl ${impl}`);
}

// Peak RSS: the kernel's high-water mark (getrusage) and a 10 ms sample of rss, whichever is
// higher; the baseline is the rss just before the cycles start (runtime + module loaded).
let sampledPeak = 0;
const sampler = setInterval(() => { sampledPeak = Math.max(sampledPeak, process.memoryUsage.rss()); }, 10);
const baselineRss = process.memoryUsage.rss();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const settled = await Promise.allSettled(sandboxIds.map((id) => snapshotAndWait(id)));
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
clearInterval(sampler);

const failures = settled.filter((s) => s.status === 'rejected').map((s) => String(s.reason));
const values = settled.filter((s) => s.status === 'fulfilled').map((s) => s.value);
const correct = settled.filter((s, i) => s.status === 'fulfilled' && s.value.sandboxId === sandboxIds[i]
  && READY.has(s.value.status) && typeof s.value.id === 'string').length;
const distinct = new Set(values.map((v) => v.id)).size;
console.log(JSON.stringify({
  impl,
  runtime: `node ${process.version}`,
  cycles: sandboxIds.length,
  ok: correct === sandboxIds.length && distinct === sandboxIds.length,
  correct,
  distinct,
  failures: failures.slice(0, 3),
  wallMs,
  cpuMs: (cpu.user + cpu.system) / 1000,
  userMs: cpu.user / 1000,
  systemMs: cpu.system / 1000,
  requests,
  baselineRssMb: baselineRss / 2 ** 20,
  peakRssMb: Math.max(sampledPeak, process.resourceUsage().maxRSS * 1024) / 2 ** 20,
}));
