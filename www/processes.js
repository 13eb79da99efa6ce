// The background-processes part of the sandboxes panel: start a shell command in a sandbox without
// waiting for it, list the sandbox's processes, follow one's output live (followOutput, an async
// iterator over a streamed response), kill one.
import { relativeTime } from './format.js';
import { $, announce, badge, busy, clearError, h, replaceRows, showError } from './ui.js';
import { fillSandboxSelect } from './sandboxes.js';

/** Lines kept in the live output pane; older ones scroll away (the process may print forever). */
const MAX_LINES = 500;

export class ProcessesPanel {
  constructor(app, root, sandboxes) {
    this.app = app;
    this.sandboxes = sandboxes;
    this.form = $('#process-form', root);
    this.select = $('#process-sandbox', root);
    this.tbody = $('#process-table tbody', root);
    this.empty = $('#process-empty', root);
    this.live = $('#process-live', root);
    this.livePid = $('#process-live-pid', root);
    this.liveState = $('#process-live-state', root);
    this.output = $('#process-output', root);
    this.errorSlot = $('#processes-error', root);
    this.following = undefined; // { pid, controller }
    this.sequence = 0;
    // The panel asks for processes only once it is used (a process started, a sandbox picked):
    // until then the sandboxes come and go (the tour deletes its own) without process calls.
    this.inUse = false;

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.start();
    });
    this.select.addEventListener('change', () => {
      this.inUse = true;
      this.refresh();
    });
    $('#process-unfollow', root).addEventListener('click', () => this.unfollow());
    this.tbody.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (button) this.onRowAction(button);
    });
  }

  /** The sandbox list changed: refill the select, then refresh the processes of the chosen one. */
  setSandboxes(list) {
    fillSandboxSelect(this.select, list, this.app.preferredSandbox);
    if (this.inUse) this.refresh();
  }

  /** Shows the chosen sandbox's processes, running ones first. Never rejects. */
  async refresh() {
    const sandboxId = this.select.value;
    const sequence = ++this.sequence;
    if (!sandboxId || !this.app.client) {
      replaceRows(this.tbody, []);
      this.empty.hidden = false;
      return;
    }
    try {
      const sandbox = await this.sandboxes.handle(sandboxId);
      const list = await sandbox.listProcesses();
      if (sequence !== this.sequence) return;
      clearError(this.errorSlot);
      const sorted = [...list].sort((a, b) => (a.status === 'running') - (b.status === 'running') || a.pid - b.pid).reverse();
      const now = Date.now();
      replaceRows(this.tbody, sorted.map((p) => h('tr', { 'data-key': String(p.pid), 'data-pid': String(p.pid) },
        h('td', { 'data-label': 'PID' }, h('code', {}, String(p.pid))),
        h('td', { 'data-label': 'Command', class: 'process-command' }, h('code', { title: [p.command, ...(p.args ?? [])].join(' ') }, [p.command, ...(p.args ?? [])].join(' '))),
        h('td', { 'data-label': 'Status' }, badge(p.status), p.exitCode !== undefined ? ` ${p.exitCode}` : ''),
        h('td', { 'data-label': 'Started', title: p.startedAt?.toISOString() }, relativeTime(p.startedAt, now)),
        h('td', { class: 'actions' },
          h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-action': 'follow', 'aria-label': `Follow the output of ${p.pid}` }, 'Follow'),
          h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-action': 'kill', 'aria-label': `Kill ${p.pid}`, disabled: p.status !== 'running' }, 'Kill')))));
      this.empty.hidden = sorted.length > 0;
    } catch (error) {
      if (sequence !== this.sequence) return;
      showError(this.errorSlot, error, `Could not list the processes of ${sandboxId}`);
    }
  }

  async start() {
    const sandboxId = this.select.value;
    const command = this.form.elements.command.value;
    this.inUse = true;
    clearError(this.errorSlot);
    if (!sandboxId) {
      this.errorSlot.replaceChildren(h('p', { class: 'hint' }, 'Create a sandbox first, then pick it here.'));
      return;
    }
    await busy($('#process-start', this.form), 'Starting…', async () => {
      try {
        const sandbox = await this.sandboxes.handle(sandboxId);
        const process = await sandbox.startProcess('sh', { args: ['-c', command] });
        announce(`Process ${process.pid} started`);
        this.follow(sandbox, process.pid);
      } catch (error) {
        showError(this.errorSlot, error, `Starting the process in ${sandboxId} failed`);
      }
    });
    this.refresh();
  }

  /** Streams a process's stdout and stderr into the live pane until it exits or is unfollowed. */
  async follow(sandbox, pid) {
    this.unfollow();
    const controller = new AbortController();
    const following = { pid, controller };
    this.following = following;
    this.live.hidden = false;
    this.livePid.textContent = String(pid);
    this.liveState.textContent = 'following…';
    this.output.replaceChildren();
    let count = 0;
    try {
      for await (const event of sandbox.followOutput(pid, { signal: controller.signal })) {
        const line = h('span', { class: event.stream === 'stderr' ? 'line line-err' : 'line', 'data-stream': event.stream ?? 'stdout' }, `${event.line}\n`);
        this.output.append(line);
        count += 1;
        if (count > MAX_LINES) this.output.firstChild.remove();
        this.output.scrollTop = this.output.scrollHeight;
      }
      const info = await sandbox.getProcess(pid);
      if (this.following === following) {
        this.liveState.textContent = info.status === 'exited' ? `exited with code ${info.exitCode}` : info.status;
        announce(`Process ${pid} ${this.liveState.textContent}`);
      }
    } catch (error) {
      if (controller.signal.aborted) {
        if (this.following === following || this.following === undefined) this.liveState.textContent = 'stopped following';
      } else {
        this.liveState.textContent = 'the stream failed';
        showError(this.errorSlot, error, `Following ${pid} failed`);
      }
    }
    if (this.following === following) this.following = undefined;
    this.refresh();
  }

  unfollow() {
    const current = this.following;
    this.following = undefined;
    current?.controller.abort();
  }

  async onRowAction(button) {
    const pid = Number(button.closest('tr').dataset.pid);
    const sandbox = await this.sandboxes.handle(this.select.value);
    if (button.dataset.action === 'follow') {
      this.follow(sandbox, pid);
      return;
    }
    clearError(this.errorSlot);
    await busy(button, 'Killing…', async () => {
      try {
        await sandbox.killProcess(pid);
        announce(`Process ${pid} killed`);
      } catch (error) {
        showError(this.errorSlot, error, `Killing ${pid} failed`);
      }
    });
    this.refresh();
  }
}
