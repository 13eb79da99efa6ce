// The browser half of the benchmark: per-call and big-list, our package (through pkg/web/auto.js,
// the entry a browser gets from the exports map) against a hand-written fetch + JSON.parse, in
// one page, alternating within each round. Same origin as the API, so there is no CORS preflight.
import { SandboxClient } from './pkg/web/auto.js';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

window.runBench = async ({ getNamespace, listNamespace, snapshotId, calls, warmup, rounds, lists, expect }) => {
  const origin = location.origin;
  const ours = SandboxClient.forLocalhost({ apiUrl: origin, namespace: getNamespace });
  const oursList = SandboxClient.forLocalhost({ apiUrl: origin, namespace: listNamespace });
  const getJson = async (url) => {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
    return JSON.parse(await res.text());
  };
  const getUrl = `${origin}/v1/namespaces/${getNamespace}/snapshots/${snapshotId}`;
  const listUrl = `${origin}/v1/namespaces/${listNamespace}/snapshots`;

  const getters = {
    floor: async () => (await getJson(getUrl)).id,
    ours: async () => (await ours.getSnapshot(snapshotId)).snapshotId,
  };
  const listers = {
    floor: async () => (await getJson(listUrl)).snapshots.length,
    ours: async () => (await oursList.listSnapshots()).length,
  };

  const out = { get: { floor: [], ours: [] }, list: { floor: [], ours: [] }, userAgent: navigator.userAgent };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? ['ours', 'floor'] : ['floor', 'ours'];
    for (const impl of order) {
      const get = getters[impl];
      for (let i = 0; i < warmup; i++) if ((await get()) !== snapshotId) throw new Error('wrong snapshot');
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) if ((await get()) !== snapshotId) throw new Error('wrong snapshot');
      out.get[impl].push(performance.now() - t0);
    }
    for (const impl of order) {
      const list = listers[impl];
      if ((await list()) !== expect) throw new Error('wrong length');
      const times = [];
      for (let i = 0; i < lists; i++) {
        const t0 = performance.now();
        const n = await list();
        times.push(performance.now() - t0);
        if (n !== expect) throw new Error(`listed ${n}, expected ${expect}`);
      }
      out.list[impl].push(median(times));
    }
  }
  return out;
};
window.benchReady = true;
