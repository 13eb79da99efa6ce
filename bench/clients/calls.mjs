// One competitor, one process: sequential getSnapshot calls (mode "get") or full listings of a
// big namespace (mode "list"). Prints one JSON line: the timings of the measured part.
//
//   node calls.mjs '{"impl":"ours|floor|official","mode":"get|list","url":...,"namespace":...,
//                    "snapshotId":...,"calls":2000,"warmup":200,"lists":5,"listWarmup":3,"expect":10000}'
//
// "floor" is the hand-written client any JS library is measured against: fetch, then
// JSON.parse of the body, nothing else. "official" is the official TypeScript SDK
// (tensorlake@0.5.89, a native addon that needs Node 22).
const args = JSON.parse(process.argv[2]);
const { impl, mode, url, namespace, snapshotId } = args;

/** @type {{ get: (id: string) => Promise<string>, list: () => Promise<number> }} get resolves to the id read back, list to the length. */
let client;
if (impl === 'floor') {
  const base = `${url}/v1/namespaces/${namespace}`;
  const getJson = async (path) => {
    const res = await fetch(base + path);
    if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
    return JSON.parse(await res.text());
  };
  client = {
    get: async (id) => (await getJson(`/snapshots/${id}`)).id,
    list: async () => (await getJson('/snapshots')).snapshots.length,
  };
} else if (impl === 'floor-headers') {
  // The floor plus the request headers the protocol asks every client to send (a fresh
  // traceparent, the request-timeout header, a User-Agent): the price of the protocol itself.
  const base = `${url}/v1/namespaces/${namespace}`;
  let n = 0;
  const getJson = async (path) => {
    n += 1;
    const res = await fetch(base + path, {
      headers: {
        traceparent: `00-${n.toString(16).padStart(32, '0')}-${n.toString(16).padStart(16, '0')}-01`,
        'X-Tensorlake-Request-Timeout-Ms': '300000',
        'User-Agent': 'bench/1.0',
      },
    });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
    return JSON.parse(await res.text());
  };
  client = {
    get: async (id) => (await getJson(`/snapshots/${id}`)).id,
    list: async () => (await getJson('/snapshots')).snapshots.length,
  };
} else if (impl === 'floor-http') {
  // Not fetch: node:http with a keep-alive agent, then JSON.parse. What Node itself allows
  // below fetch (undici), for reference.
  const { nodeHttpJson } = await import('../lib/floor.mjs');
  const getJson = nodeHttpJson(`${url}/v1/namespaces/${namespace}`);
  client = {
    get: async (id) => (await getJson(`/snapshots/${id}`)).id,
    list: async () => (await getJson('/snapshots')).snapshots.length,
  };
} else if (impl === 'floor-http-map') {
  // The listing floor of the goal: node:http (keep-alive) + JSON.parse + a plain JS
  // mapping to what our listSnapshots returns (camelCase keys, a Date). The same transport as our
  // package's in Node, so the ratio is what the library adds.
  const { nodeHttpJson, toInfo } = await import('../lib/floor.mjs');
  const getJson = nodeHttpJson(`${url}/v1/namespaces/${namespace}`);
  client = {
    get: async (id) => toInfo(await getJson(`/snapshots/${id}`)).snapshotId,
    list: async () => (await getJson('/snapshots')).snapshots.map(toInfo).length,
  };
} else if (impl === 'ours') {
  // `pkg`: another build of the package (BENCH_OLD_PKG, for before/after figures in one run).
  const { SandboxClient } = await import(args.pkg ? new URL(`file://${args.pkg}/node/index.mjs`).href : 'tensorlake-snapshots');
  const c = SandboxClient.forLocalhost({ apiUrl: url, namespace });
  client = {
    get: async (id) => (await c.getSnapshot(id)).snapshotId,
    list: async () => (await c.listSnapshots()).length,
  };
} else if (impl === 'official') {
  const { SandboxClient } = await import('tensorlake');
  // forLocalhost is the documented local constructor; it prints a deprecation warning on stderr.
  const c = SandboxClient.forLocalhost({ apiUrl: url, namespace });
  client = {
    get: async (id) => (await c.getSnapshot(id)).snapshotId,
    list: async () => (await c.listSnapshots()).length,
  };
} else {
  throw new Error(`unknown impl ${impl}`);
}

const result = { impl, mode, runtime: `node ${process.version}` };
if (mode === 'get') {
  for (let i = 0; i < args.warmup; i++) {
    if ((await client.get(snapshotId)) !== snapshotId) throw new Error('wrong snapshot');
  }
  const t0 = performance.now();
  for (let i = 0; i < args.calls; i++) {
    if ((await client.get(snapshotId)) !== snapshotId) throw new Error('wrong snapshot');
  }
  result.totalMs = performance.now() - t0;
  result.calls = args.calls;
} else if (mode === 'list') {
  for (let i = 0; i < args.listWarmup; i++) {
    if ((await client.list()) !== args.expect) throw new Error('wrong length');
  }
  const times = [];
  for (let i = 0; i < args.lists; i++) {
    const t0 = performance.now();
    const n = await client.list();
    times.push(performance.now() - t0);
    if (n !== args.expect) throw new Error(`listed ${n}, expected ${args.expect}`);
  }
  result.listMs = times;
} else {
  throw new Error(`unknown mode ${mode}`);
}
console.log(JSON.stringify(result));
