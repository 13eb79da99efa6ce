// Runs one competitor in its own process and reads the JSON line it prints last.
import { spawn } from 'node:child_process';

/**
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ timeoutMs?: number, cwd?: string, env?: Record<string,string> }} [options]
 * @returns {Promise<any>} the parsed last stdout line
 */
export function runJson(cmd, args, { timeoutMs = 180_000, cwd, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) {
        reject(new Error(`${cmd} ${args[0]} exited with ${code ?? signal}${signal === 'SIGKILL' ? ' (timed out)' : ''}:\n${err.slice(-2000)}${out.slice(-500)}`));
        return;
      }
      try { resolve(JSON.parse(last)); } catch { reject(new Error(`${cmd} ${args[0]}: no JSON result:\n${out.slice(-500)}\n${err.slice(-1000)}`)); }
    });
  });
}

/**
 * Cold start: milliseconds from just before spawn() until the child prints its first line
 * (the result of its first call). The child is then left to exit on its own (killed after 10 s).
 * @returns {Promise<{ ms: number, line: any }>}
 */
export function timeToFirstLine(cmd, args, { cwd } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let ms;
    child.stdout.on('data', (d) => {
      if (ms === undefined && String(d).includes('\n')) ms = performance.now() - t0;
      out += d;
    });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0 || ms === undefined) {
        reject(new Error(`${cmd} ${args[0]} exited with ${code}:\n${err.slice(-2000)}`));
        return;
      }
      resolve({ ms, line: JSON.parse(out.trim().split('\n')[0]) });
    });
  });
}
