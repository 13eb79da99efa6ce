// Ratios that a busy machine cannot skew: our package and the hand-written node:http floor in ONE
// process, alternating in short blocks (the order rotates from block to block), so both see the
// same load, the same CPU frequency and the same JIT state. Prints one JSON line: per block, the
// time of each client; the runner takes the median of per-block ratios.
//
//   node pairs.mjs '{"mode":"get|list","url":...,"namespace":...,"snapshotId":...,"blocks":30,
//                    "blockCalls":200,"warmup":3000,"expect":10000,"oldPkg":"/path/to/pkg"?}'
import { nodeHttpJson, toInfo } from '../lib/floor.mjs';

const args = JSON.parse(process.argv[2]);
const { mode, url, namespace, snapshotId } = args;
const base = `${url}/v1/namespaces/${namespace}`;

// The floor (bench/lib/floor.mjs).
const getJson = nodeHttpJson(base);
const info = toInfo;

async function library(specifier) {
  const { SandboxClient } = await import(specifier);
  const c = SandboxClient.forLocalhost({ apiUrl: url, namespace });
  return mode === 'get' ? async () => (await c.getSnapshot(snapshotId)).snapshotId : async () => (await c.listSnapshots()).length;
}
const impls = {
  floor: mode === 'get' ? async () => (await getJson(`/snapshots/${snapshotId}`)).id : async () => (await getJson('/snapshots')).snapshots.map(info).length,
  ours: await library('tensorlake-snapshots'),
};
if (args.oldPkg) impls.old = await library(new URL(`file://${args.oldPkg}/node/index.mjs`).href);
const expected = mode === 'get' ? snapshotId : args.expect;
const names = Object.keys(impls);

const calls = mode === 'get' ? args.blockCalls : 1;
for (const name of names) {
  for (let i = 0; i < args.warmup; i++) if ((await impls[name]()) !== expected) throw new Error(`${name}: wrong result`);
}
const blocks = [];
for (let b = 0; b < args.blocks; b++) {
  const block = {};
  for (let k = 0; k < names.length; k++) {
    const name = names[(b + k) % names.length];
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) if ((await impls[name]()) !== expected) throw new Error(`${name}: wrong result`);
    block[name] = ((performance.now() - t0) / calls) * (mode === 'get' ? 1000 : 1); // µs per call, or ms per listing
  }
  blocks.push(block);
}
console.log(JSON.stringify({ mode, runtime: `node ${process.version}`, unit: mode === 'get' ? 'us' : 'ms', blocks }));
