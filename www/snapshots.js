// The snapshots panel: snapshot a sandbox with live progress and Cancel, a refreshing table,
// restore with optional overrides, delete with confirmation.
import { elapsed, humanBytes, isAbort, optionalNumber, relativeTime, resources } from './format.js';
import { $, announce, badge, busy, clearError, h, replaceRows, showError, SnapshotProgress } from './ui.js';
import { fillSandboxSelect } from './sandboxes.js';

const PENDING = new Set(['in_progress', 'local_ready', 'deleting', 'replicating']);

/** Opens a <dialog> modally and resolves with the value of the button that closed it ('' for Esc). */
function ask(dialog) {
  return new Promise((resolve) => {
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
  });
}

export class SnapshotsPanel {
  constructor(app, root) {
    this.app = app;
    this.root = root;
    this.form = $('#snapshot-form', root);
    this.select = $('#snapshot-sandbox', root);
    this.startButton = $('#snapshot-start', root);
    this.cancelButton = $('#snapshot-cancel', root);
    this.progress = new SnapshotProgress($('#snapshot-progress', root));
    this.result = $('#snapshot-result', root);
    this.tbody = $('#snapshot-table tbody', root);
    this.empty = $('#snapshot-empty', root);
    this.updated = $('#snapshot-updated', root);
    this.errorSlot = $('#snapshots-error', root);
    this.restoreDialog = document.getElementById('restore-dialog');
    this.deleteDialog = document.getElementById('delete-dialog');
    this.controller = undefined;
    this.list = [];
    this.sequence = 0;
    this.timer = undefined;

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.snapshot();
    });
    this.cancelButton.addEventListener('click', () => this.controller?.abort());
    $('#snapshots-refresh', root).addEventListener('click', () => { this.refresh(); });
    this.tbody.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (button) this.onRowAction(button);
    });
  }

  setSandboxes(list) {
    fillSandboxSelect(this.select, list, this.app.preferredSandbox);
  }

  /** Fetches and shows the snapshots, then schedules the next refresh. Never rejects. */
  async refresh() {
    const client = this.app.client;
    if (!client) return;
    clearTimeout(this.timer);
    const sequence = ++this.sequence;
    try {
      const list = await client.listSnapshots();
      if (sequence !== this.sequence || client !== this.app.client) return;
      clearError(this.errorSlot);
      this.list = list;
      this.render();
    } catch (error) {
      if (sequence !== this.sequence) return;
      showError(this.errorSlot, error, 'Could not list the snapshots');
    }
    if (sequence === this.sequence) this.schedule();
  }

  /** Every 2 s while a snapshot is on its way, every 10 s otherwise; not while the tab is hidden. */
  schedule() {
    clearTimeout(this.timer);
    const busyNow = this.list.some((s) => PENDING.has(s.status));
    const interval = busyNow ? 2000 : 10_000;
    this.timer = setTimeout(() => {
      if (document.hidden) this.schedule();
      else this.refresh();
    }, interval);
    this.updated.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${interval / 1000} s`;
  }

  render() {
    const now = Date.now();
    const rows = [...this.list].reverse().map((s) => {
      const restorable = s.status === 'local_ready' || s.status === 'completed';
      return h('tr', { 'data-key': s.snapshotId, 'data-snapshot-id': s.snapshotId, 'data-status': s.status },
        h('td', { 'data-label': 'Snapshot' }, h('code', {}, s.snapshotId)),
        h('td', { 'data-label': 'Sandbox' }, s.sandboxId ? h('code', {}, s.sandboxId) : '—'),
        h('td', { 'data-label': 'Type' }, s.snapshotType ?? '—'),
        h('td', { 'data-label': 'Status' }, badge(s.status)),
        h('td', { 'data-label': 'Size', class: 'num', title: s.sizeBytes === undefined ? undefined : `${s.sizeBytes} bytes` }, humanBytes(s.sizeBytes)),
        h('td', { 'data-label': 'Created', title: s.createdAt?.toISOString() }, relativeTime(s.createdAt, now)),
        h('td', { 'data-label': 'Error', class: s.error ? 'cell-error' : 'muted' }, s.error ?? '—'),
        h('td', { class: 'actions' },
          h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-action': 'restore', disabled: !restorable, 'aria-label': `Restore ${s.snapshotId}` }, 'Restore…'),
          h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-action': 'delete', 'aria-label': `Delete ${s.snapshotId}` }, 'Delete…')));
    });
    replaceRows(this.tbody, rows);
    this.empty.hidden = rows.length > 0;
  }

  async snapshot() {
    const sandboxId = this.select.value;
    const snapshotType = this.form.elements.snapshotType.value;
    const waitUntil = this.form.elements.waitUntil.value;
    clearError(this.result);
    if (!sandboxId) {
      this.result.replaceChildren(h('p', { class: 'hint' }, 'Create a sandbox first, then pick it here.'));
      return;
    }
    this.controller = new AbortController();
    const { signal } = this.controller;
    this.cancelButton.disabled = false;
    let snapshotId;
    this.progress.start(waitUntil, `Asking for a ${snapshotType} snapshot of ${sandboxId}…`);
    await busy(this.startButton, 'Snapshotting…', async () => {
      try {
        const snap = await this.app.client.snapshotAndWait(sandboxId, {
          snapshotType,
          waitUntil,
          pollInterval: 0.25,
          signal,
          onStatus: (s) => {
            snapshotId = s.snapshotId;
            this.progress.status(s);
            this.refresh();
          },
        });
        this.progress.finish('done', h('code', {}, snap.snapshotId), ` is ${snap.status} after ${elapsed(this.progress.ms)}: `,
          `${humanBytes(snap.sizeBytes)}, ${snap.snapshotType}.`);
        announce(`Snapshot ${snap.status}`);
      } catch (error) {
        if (isAbort(error, signal)) {
          const which = snapshotId ? [h('code', {}, snapshotId)] : ['the snapshot'];
          this.progress.finish('cancelled', h('strong', {}, 'Cancelled'), ` after ${elapsed(this.progress.ms)}. The page stopped waiting for `, ...which,
            '; the server finishes it on its own, and the table below shows where it got to.');
          announce('Snapshot wait cancelled');
        } else {
          this.progress.finish('failed', `Failed after ${elapsed(this.progress.ms)}.`);
          showError(this.result, error, `Snapshotting ${sandboxId} failed`);
          announce(`Snapshot failed: ${error?.name ?? 'error'}`);
        }
      } finally {
        this.controller = undefined;
        this.cancelButton.disabled = true;
      }
    });
    this.app.changed();
  }

  async onRowAction(button) {
    const snapshotId = button.closest('tr').dataset.snapshotId;
    const snap = this.list.find((s) => s.snapshotId === snapshotId);
    if (button.dataset.action === 'restore') await this.restore(snap, button);
    else await this.remove(snapshotId, button);
  }

  async restore(snap, button) {
    const dialog = this.restoreDialog;
    $('#restore-snapshot-id', dialog).textContent = snap.snapshotId;
    $('#restore-memory-note', dialog).hidden = snap.snapshotType !== 'memory';
    const fields = $('#restore-form', dialog).elements;
    fields.cpus.value = '';
    fields.memoryMb.value = '';
    if (await ask(dialog) !== 'restore') return;
    const cpus = optionalNumber(fields.cpus.value);
    const memoryMb = optionalNumber(fields.memoryMb.value);
    clearError(this.result);
    await busy(button, 'Restoring…', async () => {
      try {
        const sandbox = await this.app.client.createAndConnect({ snapshotId: snap.snapshotId, cpus, memoryMb });
        const info = await sandbox.info();
        this.app.preferredSandbox = sandbox.sandboxId;
        const overrides = cpus === undefined && memoryMb === undefined ? 'inherited resources' : 'the resources asked for';
        this.result.replaceChildren(h('p', { class: 'ok-line', 'data-restored': info.sandboxId },
          'Restored ', h('code', {}, snap.snapshotId), ' into ', h('code', {}, info.sandboxId), ' ', badge(info.status),
          ` with ${overrides}: `, h('strong', {}, resources(info.resources)), '.'));
        announce(`Restored into ${info.sandboxId}`);
      } catch (error) {
        showError(this.result, error, `Restoring ${snap.snapshotId} failed`);
      }
    });
    this.app.changed();
  }

  async remove(snapshotId, button) {
    $('#delete-snapshot-id', this.deleteDialog).textContent = snapshotId;
    if (await ask(this.deleteDialog) !== 'delete') return;
    clearError(this.result);
    await busy(button, 'Deleting…', async () => {
      try {
        await this.app.client.deleteSnapshot(snapshotId);
        this.result.replaceChildren(h('p', { class: 'ok-line', 'data-deleted': snapshotId }, 'Deleted ', h('code', {}, snapshotId), '.'));
        announce(`Snapshot ${snapshotId} deleted`);
      } catch (error) {
        showError(this.result, error, `Deleting ${snapshotId} failed`);
      }
    });
    this.app.changed();
  }
}
