// Entry point of the demo page. It loads the package (which initialises its WebAssembly itself),
// then wires the connection, the guided tour and the two panels together.
import { Connection } from './connection.js';
import { SandboxesPanel } from './sandboxes.js';
import { SnapshotsPanel } from './snapshots.js';
import { ProcessesPanel } from './processes.js';
import { Tour } from './tour.js';
import { $, h, showError } from './ui.js';

const boot = document.getElementById('boot-message');

async function start() {
  let lib;
  try {
    // A dynamic import, so that a missing or broken package is reported on the page.
    lib = await import('tensorlake-snapshots');
  } catch (error) {
    boot.replaceChildren(h('div', { class: 'error-slot' }));
    showError(boot.firstChild, error, 'The tensorlake-snapshots package did not load. Run npm start: it builds the package into pkg/ and serves it with this page.');
    boot.classList.add('loading-failed');
    const pill = $('#server-pill');
    pill.dataset.state = 'error';
    pill.querySelector('.pill-text').textContent = 'Package not loaded';
    return;
  }
  boot.hidden = true;
  document.body.dataset.ready = 'loading';

  let refreshQueued = false;
  const app = {
    client: undefined,
    /** The sandbox the selects should show (the last one created or restored). */
    preferredSandbox: undefined,
    /** Something changed on the server: refresh both lists (once per tick, however many ask). */
    changed() {
      if (refreshQueued) return;
      refreshQueued = true;
      queueMicrotask(() => {
        refreshQueued = false;
        sandboxes.refresh();
        snapshots.refresh();
      });
    },
    sandboxesChanged(list) {
      snapshots.setSandboxes(list);
      processes.setSandboxes(list);
      connection.sawSandboxes(list.length);
    },
  };

  const sandboxes = new SandboxesPanel(app, $('#sandboxes'));
  const snapshots = new SnapshotsPanel(app, $('#snapshots'));
  const processes = new ProcessesPanel(app, $('#processes'), sandboxes);
  for (const select of [$('#command-sandbox'), $('#snapshot-sandbox'), $('#process-sandbox')]) {
    select.addEventListener('change', () => { app.preferredSandbox = select.value; });
  }

  const connection = new Connection(lib, {
    form: $('#connection-form'),
    pill: $('#server-pill'),
    errorSlot: $('#connection-error'),
    onChange: (client) => {
      app.client = client;
      app.changed();
    },
  });

  new Tour(app, {
    list: $('#tour-steps'),
    startButton: $('#tour-start'),
    stopButton: $('#tour-stop'),
    statusSlot: $('#tour-status'),
  });

  // Sandbox statuses change rarely on their own; refresh them now and then.
  setInterval(() => { if (!document.hidden) sandboxes.refresh(); }, 10_000);

  connection.apply();
  await connection.check();
  document.body.dataset.ready = 'true';
}

start();
