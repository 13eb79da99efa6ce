// What the numbers were measured on: recorded with every run.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUNTIMES, ROOT } from './paths.mjs';

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function machine() {
  const lscpu = sh('lscpu', []) ?? '';
  const field = (name) => lscpu.match(new RegExp(`^${name}:\\s*(.+)$`, 'm'))?.[1]?.trim() ?? null;
  return {
    nproc: Number(sh('nproc', [])),
    cpuModel: field('Model name'),
    cpus: field('CPU\\(s\\)'),
    threadsPerCore: field('Thread\\(s\\) per core'),
    hypervisor: field('Hypervisor vendor'),
    lscpuHead: lscpu.split('\n').slice(0, 10).join('\n'),
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    loadAverage: os.loadavg(),
    node20: process.version,
    node22: sh(RUNTIMES.node22, ['--version']),
    python: sh(RUNTIMES.python, ['--version']),
    chromium: sh(RUNTIMES.chromium, ['--version']),
    officialTs: JSON.parse(readFileSync(join(ROOT, 'node_modules', 'tensorlake', 'package.json'), 'utf8')).version,
    officialPython: sh(RUNTIMES.python, ['-c', 'import importlib.metadata as m; print(m.version("tensorlake"))']),
    commit: sh('git', ['rev-parse', '--short', 'HEAD']),
    libraryDirty: (sh('git', ['status', '--porcelain', '--', 'src', 'js', 'npm', 'Cargo.toml']) ?? '') !== '',
  };
}
