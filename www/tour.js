// The guided tour: the documented snapshot workflow, one real call per step, each step showing
// the call it makes and what came back.
import { duration, elapsed, humanBytes, isAbort, resources } from './format.js';
import { announce, badge, busy, clearError, h, showError, SnapshotProgress } from './ui.js';

const CSV_PATH = '/data/output.csv';

const STEPS = [
  {
    id: 'create',
    title: 'Create a sandbox',
    code: 'const sandbox = await client.createAndConnect();',
  },
  {
    id: 'write',
    title: `Write ${CSV_PATH} in it`,
    code: `await sandbox.writeFile('${CSV_PATH}', csv);`,
  },
  {
    id: 'snapshot',
    title: 'Snapshot it and wait until it is stored',
    code: `const snap = await client.snapshotAndWait(sandbox.sandboxId, {
  waitUntil: 'completed',
  onStatus: (s) => show(s.status),
  signal,
});`,
  },
  {
    id: 'restore',
    title: 'Restore a new sandbox from it, with 4 CPUs and 2048 MB',
    code: `const restored = await client.createAndConnect({
  snapshotId: snap.snapshotId, cpus: 4, memoryMb: 2048,
});
const info = await restored.info();`,
  },
  {
    id: 'read',
    title: `Read ${CSV_PATH} back from the restored sandbox`,
    code: `const bytes = await restored.readFile('${CSV_PATH}');
new TextDecoder().decode(bytes) === csv;`,
  },
  {
    id: 'cleanup',
    title: 'Clean up',
    code: `await sandbox.terminate();
await restored.terminate();
await client.deleteSnapshot(snap.snapshotId);`,
  },
];

/** A small, recognisable CSV that differs on every run, so a match cannot be a leftover. */
function makeCsv() {
  const run = crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, '0');
  const rows = [
    ['run', 'city', 'temp_c', 'observed_at'],
    [run, 'Lisbon', '21.4', new Date().toISOString()],
    [run, 'Oslo', '3.2', new Date().toISOString()],
    [run, 'Nairobi', '24.9', new Date().toISOString()],
  ];
  return rows.map((r) => r.join(',')).join('\n') + '\n';
}

export class Tour {
  constructor(app, { list, startButton, stopButton, statusSlot }) {
    this.app = app;
    this.list = list;
    this.startButton = startButton;
    this.stopButton = stopButton;
    this.statusSlot = statusSlot;
    this.controller = undefined;
    this.renderSteps();
    startButton.addEventListener('click', () => { this.run(); });
    stopButton.addEventListener('click', () => this.controller?.abort());
  }

  renderSteps() {
    this.steps = new Map();
    const items = STEPS.map((step, i) => {
      const result = h('div', { class: 'step-result' });
      const time = h('span', { class: 'step-time' });
      const li = h('li', { class: 'step', 'data-step': step.id, 'data-state': 'pending' },
        h('div', { class: 'step-marker', 'aria-hidden': 'true' }, h('span', { class: 'step-num' }, String(i + 1))),
        h('div', { class: 'step-body' },
          h('div', { class: 'step-head' },
            h('h3', { class: 'step-title' }, step.title),
            h('span', { class: 'step-state' }, 'waiting'),
            time),
          h('pre', { class: 'code' }, h('code', {}, step.code)),
          result));
      this.steps.set(step.id, { li, result, time, state: li.querySelector('.step-state') });
      return li;
    });
    this.list.replaceChildren(...items);
    this.list.dataset.state = 'idle';
  }

  setState(id, state, label) {
    const step = this.steps.get(id);
    step.li.dataset.state = state;
    step.state.textContent = label ?? state;
  }

  /** Runs one step: marks it running, times it, and marks it done with what `fn` returned. */
  async step(id, fn) {
    const step = this.steps.get(id);
    this.current = id;
    this.setState(id, 'running', 'running…');
    step.li.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    const started = performance.now();
    const shown = await fn(step.result);
    step.time.textContent = duration(performance.now() - started);
    if (shown !== undefined) step.result.replaceChildren(...[shown].flat());
    this.setState(id, 'done', 'done');
    return shown;
  }

  async run() {
    const client = this.app.client;
    if (!client || this.controller) return;
    clearError(this.statusSlot);
    this.renderSteps();
    this.list.dataset.state = 'running';
    this.controller = new AbortController();
    const { signal } = this.controller;
    this.stopButton.hidden = false;
    const started = performance.now();
    const made = { sandbox: undefined, restored: undefined, snapshotId: undefined };
    let finished = false;
    announce('Tour started');

    await busy(this.startButton, 'Running…', async () => {
      try {
        const csv = makeCsv();

        await this.step('create', async () => {
          made.sandbox = await client.createAndConnect({ signal });
          this.app.changed();
          return h('p', {}, 'Sandbox ', h('code', {}, made.sandbox.sandboxId), ' is running.');
        });

        await this.step('write', async () => {
          await made.sandbox.writeFile(CSV_PATH, csv, { signal });
          return [
            h('p', {}, `Wrote ${humanBytes(new TextEncoder().encode(csv).length)} to `, h('code', {}, CSV_PATH), ':'),
            h('pre', { class: 'file', 'data-file': 'written' }, csv),
          ];
        });

        await this.step('snapshot', async (slot) => {
          const progress = new SnapshotProgress(slot);
          progress.start('completed', 'Asking for a snapshot…');
          try {
            const snap = await client.snapshotAndWait(made.sandbox.sandboxId, {
              waitUntil: 'completed',
              pollInterval: 0.25,
              signal,
              onStatus: (s) => {
                made.snapshotId = s.snapshotId;
                progress.status(s);
              },
            });
            made.snapshotId = snap.snapshotId;
            progress.finish('done', h('code', {}, snap.snapshotId), ` is ${snap.status} after ${elapsed(progress.ms)}: `,
              `${humanBytes(snap.sizeBytes)} archive of a ${snap.snapshotType} snapshot.`);
            this.app.changed();
            return undefined;
          } catch (error) {
            progress.finish(isAbort(error, signal) ? 'cancelled' : 'failed', `Stopped after ${elapsed(progress.ms)}.`);
            throw error;
          }
        });

        await this.step('restore', async () => {
          made.restored = await client.createAndConnect({ snapshotId: made.snapshotId, cpus: 4, memoryMb: 2048, signal });
          const info = await made.restored.info({ signal });
          this.app.changed();
          return h('p', { class: 'restored-info' }, 'Sandbox ', h('code', {}, info.sandboxId), ' ', badge(info.status), ' with ',
            h('strong', { 'data-resources': '' }, resources(info.resources)), `, restored from `, h('code', {}, made.snapshotId), '.');
        });

        await this.step('read', async () => {
          const bytes = await made.restored.readFile(CSV_PATH, { signal });
          const text = new TextDecoder().decode(bytes);
          const same = text === csv;
          return [
            h('div', { class: 'compare' },
              h('figure', {}, h('figcaption', {}, `Written to ${made.sandbox.sandboxId}`), h('pre', { class: 'file', 'data-file': 'original' }, csv)),
              h('figure', {}, h('figcaption', {}, `Read back from ${made.restored.sandboxId}`), h('pre', { class: 'file', 'data-file': 'restored' }, text))),
            h('p', { class: `verdict ${same ? 'verdict-ok' : 'verdict-bad'}`, 'data-match': String(same) },
              same
                ? `✓ Identical: the restored sandbox has the same ${bytes.length} bytes.`
                : `✗ Different: ${bytes.length} bytes read, ${new TextEncoder().encode(csv).length} written.`),
          ];
        });

        await this.step('cleanup', async () => {
          await made.sandbox.terminate({ signal });
          await made.restored.terminate({ signal });
          await client.deleteSnapshot(made.snapshotId, { signal });
          const ids = [made.sandbox.sandboxId, made.restored.sandboxId, made.snapshotId];
          made.sandbox = made.restored = made.snapshotId = undefined;
          this.app.changed();
          return h('p', {}, 'Terminated ', h('code', {}, ids[0]), ' and ', h('code', {}, ids[1]), ', deleted ', h('code', {}, ids[2]), '.');
        });

        finished = true;
        this.list.dataset.state = 'done';
        const total = elapsed(performance.now() - started);
        this.startButton.dataset.label = 'Run it again';
        this.statusSlot.replaceChildren(h('p', { class: 'tour-done' }, `Tour complete in ${total}: the snapshot carried the file into a bigger sandbox.`));
        announce(`Tour complete in ${total}`);
      } catch (error) {
        const cancelled = isAbort(error, signal);
        this.list.dataset.state = cancelled ? 'cancelled' : 'failed';
        if (this.current) this.setState(this.current, cancelled ? 'cancelled' : 'failed', cancelled ? 'stopped' : 'failed');
        for (const [id, step] of this.steps) if (step.li.dataset.state === 'pending') this.setState(id, 'skipped', 'skipped');
        if (cancelled) {
          this.statusSlot.replaceChildren(h('p', { class: 'tour-stopped' }, 'Tour stopped. What it had created is being removed.'));
          announce('Tour stopped');
        } else {
          const step = STEPS.find((s) => s.id === this.current);
          const slot = h('div', { class: 'error-slot' });
          this.steps.get(this.current).result.append(slot);
          showError(slot, error, `“${step.title}” failed`);
          announce(`Tour failed: ${error?.name ?? 'error'}`);
        }
      } finally {
        this.controller = undefined;
        this.stopButton.hidden = true;
        if (!finished) await this.cleanUpAfterFailure(client, made);
      }
    });
    if (this.startButton.dataset.label) this.startButton.textContent = this.startButton.dataset.label;
  }

  /** Best effort: removes what an unfinished tour created, and says what it did. */
  async cleanUpAfterFailure(client, made) {
    const removed = [];
    const left = [];
    const attempt = async (what, fn) => {
      try { await fn(); removed.push(what); } catch { left.push(what); }
    };
    if (made.sandbox) await attempt(made.sandbox.sandboxId, () => made.sandbox.terminate());
    if (made.restored) await attempt(made.restored.sandboxId, () => made.restored.terminate());
    if (made.snapshotId) await attempt(made.snapshotId, () => client.deleteSnapshot(made.snapshotId));
    if (removed.length || left.length) {
      const note = [];
      if (removed.length) note.push(`Removed ${removed.join(', ')}.`);
      if (left.length) note.push(`Could not remove ${left.join(', ')}; see the panels below.`);
      this.statusSlot.append(h('p', { class: 'tour-cleanup' }, note.join(' ')));
    }
    this.app.changed();
  }
}
