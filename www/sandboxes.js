// The sandboxes panel: create, list, run a command in one, terminate.
import { optionalNumber, relativeTime, resources } from './format.js';
import { $, announce, badge, busy, clearError, h, replaceRows, showError } from './ui.js';

/** Statuses in which a sandbox runs commands and can be snapshotted. */
export const USABLE = new Set(['running', 'snapshotting']);

export class SandboxesPanel {
  constructor(app, root) {
    this.app = app;
    this.root = root;
    this.createForm = $('#sandbox-create-form', root);
    this.createResult = $('#sandbox-create-result', root);
    this.commandForm = $('#command-form', root);
    this.commandSelect = $('#command-sandbox', root);
    this.commandResult = $('#command-result', root);
    this.tbody = $('#sandbox-table tbody', root);
    this.empty = $('#sandbox-empty', root);
    this.errorSlot = $('#sandboxes-error', root);
    this.handles = new Map();
    this.sequence = 0;
    this.list = [];

    this.createForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.create();
    });
    this.commandForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.runCommand();
    });
    $('#sandboxes-refresh', root).addEventListener('click', () => { this.refresh(); });
    this.tbody.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (button) this.onRowAction(button);
    });
  }

  /** Fetches and shows the namespace's sandboxes. Never rejects. */
  async refresh() {
    const client = this.app.client;
    if (!client) return;
    const sequence = ++this.sequence;
    try {
      const list = await client.listSandboxes();
      if (sequence !== this.sequence || client !== this.app.client) return;
      clearError(this.errorSlot);
      this.list = list;
      this.render();
      this.app.sandboxesChanged(list);
    } catch (error) {
      if (sequence !== this.sequence) return;
      showError(this.errorSlot, error, 'Could not list the sandboxes');
    }
  }

  render() {
    const now = Date.now();
    const rows = [...this.list].reverse().map((s) => h('tr', { 'data-key': s.sandboxId, 'data-sandbox-id': s.sandboxId },
      h('td', { 'data-label': 'Sandbox' }, h('code', {}, s.sandboxId)),
      h('td', { 'data-label': 'Status' }, badge(s.status)),
      h('td', { 'data-label': 'Image' }, s.image ?? '—'),
      h('td', { 'data-label': 'Resources', 'data-resources': '' }, resources(s.resources)),
      h('td', { 'data-label': 'Created', title: s.createdAt?.toISOString() }, relativeTime(s.createdAt, now)),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-action': 'use', 'aria-label': `Run a command in ${s.sandboxId}`, disabled: !USABLE.has(s.status) }, 'Run…'),
        s.status === 'suspended' || s.status === 'suspending'
          ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-action': 'resume', 'aria-label': `Resume ${s.sandboxId}` }, 'Resume')
          : h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-action': 'suspend', 'aria-label': `Suspend ${s.sandboxId}`, disabled: s.status !== 'running' }, 'Suspend'),
        h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-action': 'terminate', 'aria-label': `Terminate ${s.sandboxId}` }, 'Terminate'))));
    replaceRows(this.tbody, rows);
    this.empty.hidden = rows.length > 0;
    fillSandboxSelect(this.commandSelect, this.list, this.app.preferredSandbox);
  }

  async create() {
    const button = $('#sandbox-create', this.root);
    const form = this.createForm.elements;
    const image = form.image.value.trim() || undefined;
    clearError(this.createResult);
    await busy(button, 'Creating…', async () => {
      try {
        const sandbox = await this.app.client.createAndConnect({
          image,
          cpus: optionalNumber(form.cpus.value),
          memoryMb: optionalNumber(form.memoryMb.value),
        });
        this.handles.set(sandbox.sandboxId, sandbox);
        this.app.preferredSandbox = sandbox.sandboxId;
        this.createResult.replaceChildren(h('p', { class: 'ok-line' }, 'Created ', h('code', {}, sandbox.sandboxId), '. It is running.'));
        announce(`Sandbox ${sandbox.sandboxId} created`);
      } catch (error) {
        showError(this.createResult, error, 'Creating the sandbox failed');
      }
    });
    this.app.changed();
  }

  async handle(sandboxId) {
    let sandbox = this.handles.get(sandboxId);
    if (!sandbox) {
      sandbox = await this.app.client.connect(sandboxId);
      this.handles.set(sandboxId, sandbox);
    }
    return sandbox;
  }

  async runCommand() {
    const sandboxId = this.commandSelect.value;
    const command = this.commandForm.elements.command.value;
    const button = $('#command-run', this.root);
    clearError(this.commandResult);
    if (!sandboxId) {
      this.commandResult.replaceChildren(h('p', { class: 'hint' }, 'Create a sandbox first, then pick it here.'));
      return;
    }
    await busy(button, 'Running…', async () => {
      try {
        const sandbox = await this.handle(sandboxId);
        const started = performance.now();
        const result = await sandbox.commands.run(command);
        const ms = Math.round(performance.now() - started);
        const ok = result.exitCode === 0;
        this.commandResult.replaceChildren(h('div', { class: 'command-output', 'data-exit-code': result.exitCode },
          h('div', { class: 'command-meta' },
            h('span', { class: `exit ${ok ? 'exit-ok' : 'exit-bad'}` }, `exit code ${result.exitCode}`),
            h('span', { class: 'muted' }, ` in ${ms} ms on `), h('code', {}, sandboxId)),
          h('p', { class: 'stream-label' }, 'stdout'),
          h('pre', { class: 'stream', 'data-stream': 'stdout' }, result.stdout || '(empty)'),
          result.stderr ? [h('p', { class: 'stream-label' }, 'stderr'), h('pre', { class: 'stream stream-err', 'data-stream': 'stderr' }, result.stderr)] : null));
        announce(`Command exited with code ${result.exitCode}`);
      } catch (error) {
        showError(this.commandResult, error, `Running the command in ${sandboxId} failed`);
      }
    });
  }

  async onRowAction(button) {
    const sandboxId = button.closest('tr').dataset.sandboxId;
    if (button.dataset.action === 'use') {
      this.commandSelect.value = sandboxId;
      this.app.preferredSandbox = sandboxId;
      this.commandForm.elements.command.focus();
      return;
    }
    clearError(this.errorSlot);
    const action = button.dataset.action;
    if (action === 'suspend' || action === 'resume') {
      // Waits until the sandbox is suspended (its processes frozen) or running again.
      await busy(button, action === 'suspend' ? 'Suspending…' : 'Resuming…', async () => {
        try {
          await this.app.client[action](sandboxId, { pollInterval: 0.25 });
          announce(`Sandbox ${sandboxId} ${action === 'suspend' ? 'suspended' : 'resumed'}`);
        } catch (error) {
          showError(this.errorSlot, error, `${action === 'suspend' ? 'Suspending' : 'Resuming'} ${sandboxId} failed`);
        }
      });
      this.app.changed();
      return;
    }
    await busy(button, 'Terminating…', async () => {
      try {
        await this.app.client.deleteSandbox(sandboxId);
        this.handles.delete(sandboxId);
        announce(`Sandbox ${sandboxId} terminated`);
      } catch (error) {
        showError(this.errorSlot, error, `Terminating ${sandboxId} failed`);
      }
    });
    this.app.changed();
  }
}

/** Fills a <select> with the sandboxes that can run commands, keeping the choice when it can. */
export function fillSandboxSelect(select, list, preferred) {
  const usable = list.filter((s) => USABLE.has(s.status));
  const previous = select.value;
  const options = usable.map((s) => h('option', { value: s.sandboxId }, `${s.sandboxId} · ${resources(s.resources)}`));
  if (options.length === 0) options.push(h('option', { value: '' }, 'No running sandbox'));
  select.replaceChildren(...options);
  const ids = new Set(usable.map((s) => s.sandboxId));
  if (preferred && ids.has(preferred)) select.value = preferred;
  else if (ids.has(previous)) select.value = previous;
  else if (usable.length) select.value = usable.at(-1).sandboxId;
}
