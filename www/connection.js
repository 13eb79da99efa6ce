// The connection: which API the page talks to, with which credentials, and whether it answers.
// The API key stays in memory: in its (password) field and in the client built from it. It is
// never written to storage, the URL, a cookie or the console; reloading the page forgets it.
import { announce, clearError, showError } from './ui.js';

const PILL_TEXT = {
  checking: 'Checking the server…',
  online: 'Server answers',
  unauthorized: 'Key refused',
  offline: 'Server unreachable',
  error: 'Server error',
};

export class Connection {
  /** @param lib the tensorlake-snapshots module */
  constructor(lib, { form, pill, errorSlot, onChange }) {
    this.lib = lib;
    this.form = form;
    this.pill = pill;
    this.errorSlot = errorSlot;
    this.onChange = onChange;
    this.client = undefined;
    this.probe = undefined;
    this.checkTimer = undefined;
    this.checking = undefined;

    form.elements.apiUrl.value = location.origin;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.apply();
    });
  }

  /** Builds clients from the form. Returns false (and shows why) when an option is refused. */
  apply() {
    clearError(this.errorSlot);
    const apiUrl = this.form.elements.apiUrl.value.trim();
    const namespace = this.form.elements.namespace.value.trim() || 'default';
    const apiKey = this.form.elements.apiKey.value;
    const options = { apiUrl, namespace };
    if (apiKey) {
      // The visible note next to the field explains what this means; the user typed the key.
      options.apiKey = apiKey;
      options.dangerouslyAllowBrowser = true;
    }
    try {
      const client = new this.lib.SandboxClient(options);
      // The status pill's own client: one quick attempt, so "unreachable" shows quickly.
      const probe = new this.lib.SandboxClient({ ...options, maxRetries: 0, requestTimeout: 5 });
      this.client = client;
      this.probe = probe;
    } catch (error) {
      showError(this.errorSlot, error, 'These connection settings were refused');
      this.setPill('error', 'Settings refused');
      return false;
    }
    this.onChange?.(this.client);
    this.check();
    clearInterval(this.checkTimer);
    this.checkTimer = setInterval(() => { if (!document.hidden) this.check({ quiet: true }); }, 15_000);
    return true;
  }

  /** Describes the connection for the pill's tooltip (never the key). */
  describe() {
    const { apiUrl, namespace, credentials } = this.client.toJSON();
    return `${apiUrl} · namespace ${namespace} · credentials: ${credentials}`;
  }

  /** Asks the server for its sandboxes and shows the outcome on the pill. */
  async check({ quiet = false } = {}) {
    if (this.checking) return this.checking;
    const probe = this.probe;
    if (!quiet) this.setPill('checking');
    this.checking = (async () => {
      try {
        const sandboxes = await probe.listSandboxes();
        if (probe !== this.probe) return;
        const host = new URL(this.client.toJSON().apiUrl).host;
        this.setPill('online', `${host} · ${sandboxes.length} sandbox${sandboxes.length === 1 ? '' : 'es'}`);
      } catch (error) {
        if (probe !== this.probe) return;
        if (error?.statusCode === 401 || error?.statusCode === 403) this.setPill('unauthorized', `HTTP ${error.statusCode}`);
        else if (error?.name === 'SandboxConnectionError') this.setPill('offline');
        else this.setPill('error', error?.statusCode ? `HTTP ${error.statusCode}` : error?.name);
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  /** A list call just succeeded: the server answers, with this many sandboxes. */
  sawSandboxes(count) {
    if (this.checking || !this.client) return;
    const host = new URL(this.client.toJSON().apiUrl).host;
    this.setPill('online', `${host} · ${count} sandbox${count === 1 ? '' : 'es'}`);
  }

  setPill(state, detail) {
    const changed = this.pill.dataset.state !== state;
    this.pill.dataset.state = state;
    const text = this.pill.querySelector('.pill-text');
    text.textContent = detail ? `${PILL_TEXT[state]} · ${detail}` : PILL_TEXT[state];
    // Read out when the server's state changes, not at every check.
    if (changed && state !== 'checking') announce(PILL_TEXT[state]);
    if (this.client) this.pill.title = this.describe();
  }
}
