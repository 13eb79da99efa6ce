// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by area (our wasm, our JS glue,
// Node's fetch (undici), other Node internals, GC, idle) and the top functions by self time.
//
//   node bench/profile/summary.mjs PROFILE.cpuprofile [top=25]
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const top = Number(topArg ?? 25);

const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = prof.timeDeltas;
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i];
  self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0));
}

function area(cf) {
  const { url, functionName } = cf;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'program (V8/native, unattributed)';
  if (url.startsWith('wasm://') || /^\$?func\d+|wasm-function/.test(functionName)) return 'wasm (ours)';
  if (/tensorlake_snapshots\.js$|snippets\/|transport\.cjs$|errors\.(c?js)$|tensorlake-snapshots|pkg\//.test(url)) return 'JS glue (ours)';
  if (/undici/.test(url)) return 'fetch (undici)';
  if (url.startsWith('node:')) return 'other Node internals';
  if (/tensorlake\/dist/.test(url)) return 'official SDK JS';
  if (url === '') return `native: ${functionName || '(anonymous)'}`;
  return 'benchmark / user code';
}

const areas = new Map();
const funcs = new Map();
let total = 0;
for (const [id, us] of self) {
  const n = byId.get(id);
  const cf = n.callFrame;
  total += us;
  const a = area(cf);
  areas.set(a, (areas.get(a) ?? 0) + us);
  const key = `${cf.functionName || '(anonymous)'}  ${cf.url.replace(/^.*\//, '')}:${cf.lineNumber + 1}`;
  funcs.set(key, (funcs.get(key) ?? 0) + us);
}
const busy = total - (areas.get('idle') ?? 0);
const pct = (us, of) => `${((us / of) * 100).toFixed(1).padStart(5)} %`;
console.log(`total ${(total / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms busy (not idle)\n`);
console.log('self time by area (share of busy time):');
for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1])) if (a !== 'idle') console.log(`  ${pct(us, busy)}  ${(us / 1000).toFixed(1).padStart(8)} ms  ${a}`);
console.log(`\ntop ${top} functions by self time:`);
for (const [k, us] of [...funcs].sort((x, y) => y[1] - x[1]).slice(0, top)) if (!k.startsWith('(idle)')) console.log(`  ${pct(us, busy)}  ${(us / 1000).toFixed(1).padStart(8)} ms  ${k}`);
