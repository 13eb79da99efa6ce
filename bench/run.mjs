// The benchmark runner: one local server, every competitor in its own process, competitors
// interleaved within each round (the order rotates from round to round), several rounds,
// median and spread. Writes bench/results/<time>.json and latest.json, prints the table, and
// (unless --no-write) replaces the generated section of BENCHMARKS.md.
//
//   node bench/run.mjs [--quick] [--only percall,pairs,list,concurrency,cold,size,browser] [--no-write]
//
// --quick shrinks every workload (for checking the harness, not for numbers).
import { mkdirSync, writeFileSync, readFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, BENCH, RUNTIMES } from './lib/paths.mjs';
import { startServer } from './lib/server.mjs';
import { runJson, timeToFirstLine } from './lib/proc.mjs';
import { rotate } from './lib/stats.mjs';
import { machine } from './lib/machine.mjs';
import { renderMarkdown, updateBenchmarksMd } from './lib/report.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const noWrite = argv.includes('--no-write') || quick;
const onlyArg = argv.find((a) => a.startsWith('--only'));
const only = onlyArg ? new Set((onlyArg.includes('=') ? onlyArg.split('=')[1] : argv[argv.indexOf(onlyArg) + 1]).split(',')) : null;
const want = (section) => !only || only.has(section);

const CFG = quick
  ? { rounds: 2, calls: 200, warmup: 20, listSize: 10_000, lists: 2, listWarmup: 1, concurrency: 100, concRounds: 1, coldRounds: 2, browserRounds: 1, browserWarmup: 20, pollInterval: 0.05, pairBlocks: 4, pairBlockCalls: 50, pairListBlocks: 2 }
  // warmup 3000: Node's fetch (undici) needs a few thousand calls before its JIT-compiled steady
  // state (in a fresh Node 20 process the floor runs ~900 µs/call for the first 1,000 calls and
  // ~450 µs/call after 3,000), and per-call latency is about the steady state; cold start is
  // measured separately.
  : { rounds: 5, calls: 2000, warmup: 3000, listSize: 10_000, lists: 5, listWarmup: 3, concurrency: 1000, concRounds: 3, coldRounds: 10, browserRounds: 5, browserWarmup: 200, pollInterval: 0.05, pairBlocks: 30, pairBlockCalls: 200, pairListBlocks: 15 };

const log = (...a) => console.error('[bench]', ...a);
const CALLS = join(BENCH, 'clients', 'calls.mjs');
const CALLS_PY = join(BENCH, 'clients', 'calls.py');
const CONC = join(BENCH, 'clients', 'concurrency.mjs');
const PAIRS = join(BENCH, 'clients', 'pairs.mjs');
const COLD = join(BENCH, 'clients', 'cold');

// The competitors of the per-call and big-list measurements. `floor` on Node 20 is the baseline
// (a); ours and the floor on Node 22 are there so the official TS SDK, which needs Node 22, is
// also compared on its own runtime.
const NODE_COMPETITORS = [
  { key: 'floor-node20', label: 'hand-written fetch + JSON.parse (the floor)', runtime: 'Node 20', cmd: RUNTIMES.node20, impl: 'floor' },
  { key: 'ours-node20', label: 'tensorlake-snapshots (this package)', runtime: 'Node 20', cmd: RUNTIMES.node20, impl: 'ours' },
  { key: 'official-ts-node22', label: 'official TypeScript SDK tensorlake@0.5.89', runtime: 'Node 22', cmd: RUNTIMES.node22, impl: 'official' },
  { key: 'official-python', label: 'official Python SDK tensorlake==0.5.163', runtime: 'Python 3.11', cmd: RUNTIMES.python, impl: 'python' },
  { key: 'floor-node22', label: 'hand-written fetch + JSON.parse', runtime: 'Node 22', cmd: RUNTIMES.node22, impl: 'floor' },
  { key: 'ours-node22', label: 'tensorlake-snapshots (this package)', runtime: 'Node 22', cmd: RUNTIMES.node22, impl: 'ours' },
  { key: 'floor-headers-node20', label: 'reference: fetch + JSON.parse with the protocol\'s request headers', runtime: 'Node 20', cmd: RUNTIMES.node20, impl: 'floor-headers', only: ['percall'] },
  { key: 'floor-http-node20', label: 'hand-written node:http (keep-alive) + JSON.parse', runtime: 'Node 20', cmd: RUNTIMES.node20, impl: 'floor-http' },
  { key: 'floor-http-node22', label: 'hand-written node:http (keep-alive) + JSON.parse', runtime: 'Node 22', cmd: RUNTIMES.node22, impl: 'floor-http' },
  { key: 'floor-http-map-node20', label: 'hand-written node:http + JSON.parse + a plain JS mapping', runtime: 'Node 20', cmd: RUNTIMES.node20, impl: 'floor-http-map', only: ['list'] },
  { key: 'floor-http-map-node22', label: 'hand-written node:http + JSON.parse + a plain JS mapping', runtime: 'Node 22', cmd: RUNTIMES.node22, impl: 'floor-http-map', only: ['list'] },
];
// BENCH_OLD_PKG=/path/to/another/pkg adds that build as a competitor (the same calls, in the same
// rounds): before/after figures of a change, measured side by side.
if (process.env.BENCH_OLD_PKG) {
  for (const [node, cmd] of [['Node 20', RUNTIMES.node20], ['Node 22', RUNTIMES.node22]]) {
    NODE_COMPETITORS.push({ key: `old-${node === 'Node 20' ? 'node20' : 'node22'}`, label: `before: ${process.env.BENCH_OLD_LABEL ?? process.env.BENCH_OLD_PKG}`, runtime: node, cmd, impl: 'ours', pkg: process.env.BENCH_OLD_PKG });
  }
}
const competitorsFor = (section) => NODE_COMPETITORS.filter((c) => !c.only || c.only.includes(section));

function callArgs(c, payload) {
  return c.impl === 'python' ? [CALLS_PY, JSON.stringify(payload)] : [CALLS, JSON.stringify({ ...payload, impl: c.impl, pkg: c.pkg })];
}

async function main() {
  const started = new Date();
  const results = { startedAt: started.toISOString(), config: CFG, quick, machine: machine(), sections: {} };
  log(`machine: ${results.machine.nproc} cores, ${results.machine.cpuModel}, load ${results.machine.loadAverage.map((x) => x.toFixed(2)).join(' ')}`);

  // The browser page is served by the same server, from a directory holding a copy of pkg/.
  const staticDir = mkdtempSync(join(tmpdir(), 'tl-bench-www-'));
  cpSync(join(ROOT, 'pkg'), join(staticDir, 'pkg'), { recursive: true, dereference: true });
  cpSync(join(BENCH, 'browser'), staticDir, { recursive: true });
  const server = await startServer({ staticDir });
  log(`server ${server.url}`);
  try {
    // Fixtures: one completed snapshot to get, 10,000 to list, and the concurrency sandboxes.
    const getNs = 'bench-get';
    const listNs = 'bench-list';
    const [getSandbox] = await server.createSandboxes(getNs, 1);
    const snapshotId = (await server.snapshotCompleted(getNs, getSandbox)).id;
    const [listSandbox] = await server.createSandboxes(listNs, 1);
    const listSeed = (await server.snapshotCompleted(listNs, listSandbox)).id;
    await server.seedSnapshots(listSeed, CFG.listSize - 1);
    const listed = (await server.call('GET', `/v1/namespaces/${listNs}/snapshots`)).snapshots.length;
    if (listed !== CFG.listSize) throw new Error(`list namespace holds ${listed} snapshots`);
    log(`fixtures: snapshot ${snapshotId}; ${listed} snapshots in ${listNs}`);
    const common = { url: server.url, snapshotId, calls: CFG.calls, warmup: CFG.warmup, lists: CFG.lists, listWarmup: CFG.listWarmup, expect: CFG.listSize };

    if (want('percall')) {
      const rounds = [];
      for (let r = 0; r < CFG.rounds; r++) {
        const round = {};
        for (const c of rotate(competitorsFor('percall'), r)) {
          const out = await runJson(c.cmd, callArgs(c, { ...common, mode: 'get', namespace: getNs }));
          round[c.key] = out.totalMs;
        }
        rounds.push(round);
        log(`per-call round ${r + 1}/${CFG.rounds}: ${fmtRound(round, (ms) => `${((ms / CFG.calls) * 1000).toFixed(0)}us`)}`);
      }
      results.sections.percall = { calls: CFG.calls, competitors: competitorsFor('percall').map(strip), rounds };
    }

    if (want('list')) {
      const rounds = [];
      for (let r = 0; r < CFG.rounds; r++) {
        const round = {};
        const inner = {};
        for (const c of rotate(competitorsFor('list'), r)) {
          const out = await runJson(c.cmd, callArgs(c, { ...common, mode: 'list', namespace: listNs }));
          inner[c.key] = out.listMs;
          round[c.key] = median(out.listMs);
        }
        rounds.push(round);
        log(`big-list round ${r + 1}/${CFG.rounds}: ${fmtRound(round, (ms) => `${ms.toFixed(1)}ms`)}`);
      }
      results.sections.list = { size: CFG.listSize, competitors: competitorsFor('list').map(strip), rounds };
    }

    if (want('pairs')) {
      // Ours against the node:http floor in one process, alternating blocks (bench/clients/pairs.mjs).
      const runs = [];
      for (const [runtime, cmd] of [['Node 20', RUNTIMES.node20], ['Node 22', RUNTIMES.node22]]) {
        for (const mode of ['get', 'list']) {
          const payload = mode === 'get'
            ? { mode, url: server.url, namespace: getNs, snapshotId, blocks: CFG.pairBlocks, blockCalls: CFG.pairBlockCalls, warmup: CFG.warmup }
            : { mode, url: server.url, namespace: listNs, blocks: CFG.pairListBlocks, warmup: CFG.listWarmup, expect: CFG.listSize };
          if (process.env.BENCH_OLD_PKG) payload.oldPkg = process.env.BENCH_OLD_PKG;
          const out = await runJson(cmd, [PAIRS, JSON.stringify(payload)], { timeoutMs: 600_000 });
          runs.push({ runtime, ...out });
          const ratios = out.blocks.map((b) => b.ours / b.floor).sort((a, b) => a - b);
          log(`pairs ${runtime} ${mode}: ours/floor median ${ratios[ratios.length >> 1].toFixed(2)} over ${ratios.length} blocks`);
        }
      }
      results.sections.pairs = { oldLabel: process.env.BENCH_OLD_PKG ? (process.env.BENCH_OLD_LABEL ?? process.env.BENCH_OLD_PKG) : undefined, runs };
    }

    if (want('concurrency')) {
      const concNs = 'bench-conc';
      const ids = await server.createSandboxes(concNs, CFG.concurrency);
      const idsFile = join(server.dataDir, 'conc-ids.json');
      writeFileSync(idsFile, JSON.stringify(ids));
      log(`concurrency: ${ids.length} sandboxes`);
      const competitors = [
        { key: 'floor-node20', label: 'hand-written fetch polling loop', runtime: 'Node 20', impl: 'floor' },
        { key: 'ours-node20', label: 'tensorlake-snapshots snapshotAndWait', runtime: 'Node 20', impl: 'ours' },
      ];
      const rounds = [];
      for (let r = 0; r < CFG.concRounds; r++) {
        const round = {};
        for (const c of rotate(competitors, r)) {
          const out = await runJson(RUNTIMES.node20, [CONC, JSON.stringify({ impl: c.impl, url: server.url, namespace: concNs, idsFile, pollInterval: CFG.pollInterval })], { timeoutMs: 300_000 });
          if (!out.ok) throw new Error(`concurrency ${c.key}: not all cycles completed correctly: ${JSON.stringify(out)}`);
          round[c.key] = out;
        }
        rounds.push(round);
        log(`concurrency round ${r + 1}/${CFG.concRounds}: ${competitors.map((c) => `${c.key} wall ${round[c.key].wallMs.toFixed(0)}ms cpu ${round[c.key].cpuMs.toFixed(0)}ms rss ${round[c.key].peakRssMb.toFixed(0)}MB req ${round[c.key].requests}`).join(' | ')}`);
      }
      results.sections.concurrency = { cycles: ids.length, pollInterval: CFG.pollInterval, competitors, rounds };
    }

    if (want('cold')) {
      const competitors = [
        { key: 'floor-node20', label: 'hand-written fetch + JSON.parse', runtime: 'Node 20', cmd: RUNTIMES.node20, script: 'floor.mjs' },
        { key: 'ours-node20', label: 'tensorlake-snapshots via import', runtime: 'Node 20', cmd: RUNTIMES.node20, script: 'ours.mjs' },
        { key: 'ours-require-node20', label: 'tensorlake-snapshots via require', runtime: 'Node 20', cmd: RUNTIMES.node20, script: 'ours.cjs' },
        { key: 'ours-node22', label: 'tensorlake-snapshots via import', runtime: 'Node 22', cmd: RUNTIMES.node22, script: 'ours.mjs' },
        { key: 'official-ts-node22', label: 'official TypeScript SDK', runtime: 'Node 22', cmd: RUNTIMES.node22, script: 'official.mjs' },
        { key: 'official-python', label: 'official Python SDK', runtime: 'Python 3.11', cmd: RUNTIMES.python, script: 'official.py' },
      ];
      const rounds = [];
      // One untimed pass first, so every file is in the page cache for every competitor.
      for (const c of competitors) await timeToFirstLine(c.cmd, [join(COLD, c.script), server.url, getNs, snapshotId]);
      for (let r = 0; r < CFG.coldRounds; r++) {
        const round = {};
        for (const c of rotate(competitors, r)) {
          const { ms, line } = await timeToFirstLine(c.cmd, [join(COLD, c.script), server.url, getNs, snapshotId]);
          if (line.id !== snapshotId) throw new Error(`cold ${c.key}: wrong result ${JSON.stringify(line)}`);
          round[c.key] = ms;
        }
        rounds.push(round);
      }
      log(`cold start medians: ${competitors.map((c) => `${c.key} ${median(rounds.map((r) => r[c.key])).toFixed(0)}ms`).join(' | ')}`);
      results.sections.cold = { competitors: competitors.map(({ cmd, ...c }) => c), rounds };
    }

    if (want('size')) results.sections.size = sizes();

    if (want('browser')) {
      results.sections.browser = await browser(server.url, { getNamespace: getNs, listNamespace: listNs, snapshotId, calls: CFG.calls, warmup: CFG.browserWarmup, rounds: CFG.browserRounds, lists: CFG.lists, expect: CFG.listSize });
    }
  } finally {
    await server.stop();
    rmSync(staticDir, { recursive: true, force: true });
  }

  results.finishedAt = new Date().toISOString();
  results.durationS = (Date.now() - started.getTime()) / 1000;
  results.machine.loadAverageEnd = (await import('node:os')).loadavg();

  const dir = join(BENCH, 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = results.startedAt.replace(/[:.]/g, '-');
  writeFileSync(join(dir, `${stamp}.json`), JSON.stringify(results, null, 2));
  writeFileSync(join(dir, 'latest.json'), JSON.stringify(results, null, 2));
  const md = renderMarkdown(results);
  console.log(md);
  if (!noWrite && !only) {
    updateBenchmarksMd(md);
    log('BENCHMARKS.md updated');
  } else {
    log('BENCHMARKS.md not touched (partial or quick run)');
  }
  log(`done in ${results.durationS.toFixed(0)} s; results in bench/results/${stamp}.json`);
}

function strip({ cmd, only, pkg, ...c }) {
  return c;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmtRound(round, f) {
  return Object.entries(round).map(([k, v]) => `${k} ${f(v)}`).join(' ');
}

/** Tarball and gzipped wasm of our package; the official package's tarball as npm reports it. */
function sizes() {
  const packJson = (spec) => JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', spec], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))[0];
  const ours = packJson('./pkg');
  const wasm = readFileSync(join(ROOT, 'pkg', 'tensorlake_snapshots_bg.wasm'));
  const gz = (file) => gzipSync(readFileSync(join(ROOT, 'pkg', file)), { level: 9 }).length;
  let official;
  let officialSource;
  try {
    official = packJson('tensorlake@0.5.89');
    officialSource = 'npm registry (npm pack tensorlake@0.5.89 --dry-run --json)';
  } catch {
    official = packJson('./node_modules/tensorlake');
    officialSource = 'the installed copy (npm pack ./node_modules/tensorlake --dry-run --json): the registry was unreachable';
  }
  const out = {
    ours: {
      tarball: ours.size,
      unpacked: ours.unpackedSize,
      files: ours.entryCount,
      wasm: wasm.length,
      wasmGzip: gzipSync(wasm, { level: 9 }).length,
      // What each environment loads: its glue, the glue's JS snippets, the entry files.
      nodeJsGzip: ours.files.map((f) => f.path).filter((f) => /^(tensorlake_snapshots\.js|snippets\/.*\.js|node\/.*\.c?m?js)$/.test(f)).reduce((n, f) => n + gz(f), 0),
      webJsGzip: ours.files.map((f) => f.path).filter((f) => /^web\/.*\.js$/.test(f)).reduce((n, f) => n + gz(f), 0),
    },
    official: { version: official.version, tarball: official.size, unpacked: official.unpackedSize, files: official.entryCount, source: officialSource },
  };
  log(`size: ours tarball ${out.ours.tarball} B, wasm gz ${out.ours.wasmGzip} B; official tarball ${out.official.tarball} B`);
  return out;
}

/** Per-call and big-list in headless Chromium, through pkg/web/auto.js, against fetch. */
async function browser(url, config) {
  const { chromium } = await import('playwright-core');
  const b = await chromium.launch({
    executablePath: RUNTIMES.chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await b.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${url}/index.html`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 30_000 }).catch(() => {
      throw new Error(`the bench page did not load: ${errors.join('; ')}`);
    });
    const out = await page.evaluate((cfg) => window.runBench(cfg), config);
    const version = b.version();
    const rounds = out.get.floor.map((_, i) => ({ 'get-floor': out.get.floor[i], 'get-ours': out.get.ours[i], 'list-floor': out.list.floor[i], 'list-ours': out.list.ours[i] }));
    log(`browser: ${rounds.map((r) => fmtRound(r, (v) => v.toFixed(0))).join(' / ')}`);
    return { chromium: version, calls: config.calls, size: config.expect, rounds };
  } finally {
    await b.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
