// Small DOM helpers shared by the panels: element creation, inline errors, busy buttons, the
// live announcer and the snapshot progress indicator.
import { describeError, elapsed, SNAPSHOT_STAGES, snapshotProgress } from './format.js';

/** h('p', { class: 'x' }, 'text', child) -> element. `null`/`false` children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Reads a short message out to screen readers (the page's one polite live region). */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A new text node in a fresh task is announced even when the text repeats.
  setTimeout(() => { region.textContent = text; }, 30);
}

/**
 * Shows an error inline in `slot`: its class, HTTP status, the message and the trace id, with
 * what was being done (`context`). The element is `role="alert"`.
 */
export function showError(slot, error, context) {
  const info = describeError(error);
  // The same error again (a background refresh failing the same way): keep the box, so a
  // screen reader does not hear the alert again every few seconds; refresh its trace id.
  const key = JSON.stringify([info.name, info.statusCode, info.code, info.message, context]);
  const existing = slot.firstElementChild;
  if (existing?.classList.contains('error-box') && existing.dataset.key === key) {
    const trace = existing.querySelector('.err-trace code');
    if (trace && info.traceId) trace.textContent = info.traceId;
    return existing;
  }
  const meta = [];
  if (info.statusCode !== undefined) meta.push(h('span', { class: 'err-status' }, `HTTP ${info.statusCode}`));
  if (info.code !== undefined) meta.push(h('span', { class: 'err-code' }, info.code));
  if (info.retryable === true) meta.push(h('span', { class: 'err-flag' }, 'retryable'));
  const box = h('div', { class: 'error-box', role: 'alert', 'data-key': key, 'data-error-class': info.name, 'data-status': info.statusCode },
    h('div', { class: 'err-head' },
      h('span', { class: 'err-class' }, info.name),
      meta,
      h('button', { type: 'button', class: 'err-close', 'aria-label': 'Dismiss this error', onclick: () => box.remove() }, '×')),
    context ? h('p', { class: 'err-context' }, context) : null,
    h('p', { class: 'err-message' }, info.message),
    info.traceId ? h('p', { class: 'err-trace' }, 'trace id ', h('code', {}, info.traceId)) : null);
  slot.replaceChildren(box);
  return box;
}

export function clearError(slot) {
  slot.replaceChildren();
}

/**
 * Runs `fn` with `button` disabled and marked busy, so a double click cannot start the same
 * thing twice. Resolves with what `fn` resolved with; `fn` must handle its own errors.
 */
export async function busy(button, label, fn) {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.replaceChildren(h('span', { class: 'spinner', 'aria-hidden': 'true' }), label);
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = original;
  }
}

/** A status badge: `<span class="badge" data-status="running">running</span>`. */
export function badge(status) {
  return h('span', { class: 'badge', 'data-status': status ?? 'unknown' }, status ?? 'unknown');
}

const STAGE_LABELS = { in_progress: 'in progress', local_ready: 'local ready', completed: 'completed' };

/**
 * The live indicator of one snapshot wait: the stages in_progress -> local_ready -> completed,
 * a bar (role progressbar), the elapsed time (ticking) and a status line. Status changes are
 * also sent to the page's live region, so screen readers hear each change once, not the clock.
 */
export class SnapshotProgress {
  constructor(container) {
    this.container = container;
    this.timer = undefined;
    this.started = 0;
  }

  start(waitUntil, intro) {
    this.stop();
    this.waitUntil = waitUntil;
    this.seen = [];
    const stages = SNAPSHOT_STAGES.slice(0, SNAPSHOT_STAGES.indexOf(waitUntil) + 1);
    this.stageEls = new Map(stages.map((s) => [s, h('span', { class: 'stage', 'data-stage': s, 'data-state': 'todo' }, STAGE_LABELS[s] ?? s)]));
    // The chips repeat what the progress bar and the status line say, so they are hidden from
    // screen readers.
    const chips = [];
    for (const el of this.stageEls.values()) {
      if (chips.length) chips.push(h('span', { class: 'stage-arrow' }, '→'));
      chips.push(el);
    }
    this.fill = h('div', { class: 'bar-fill' });
    this.bar = h('div', {
      class: 'bar', role: 'progressbar', 'aria-label': 'Snapshot progress',
      'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0, 'aria-valuetext': 'starting',
    }, this.fill);
    this.clock = h('span', { class: 'clock', 'aria-hidden': 'true' }, '0.0 s');
    this.line = h('p', { class: 'progress-line' }, intro);
    this.root = h('div', { class: 'progress', 'data-state': 'running' },
      h('div', { class: 'progress-top' }, h('div', { class: 'stages', 'aria-hidden': 'true' }, chips), this.clock),
      this.bar,
      this.line);
    this.container.replaceChildren(this.root);
    this.started = performance.now();
    this.timer = setInterval(() => this.tick(), 100);
  }

  /** Elapsed milliseconds since `start`. */
  get ms() {
    return performance.now() - this.started;
  }

  tick() {
    if (this.clock) this.clock.textContent = elapsed(this.ms);
  }

  /** A status seen by `onStatus`. */
  status(snapshot) {
    if (!this.root) return;
    const status = snapshot.status;
    const index = SNAPSHOT_STAGES.indexOf(status);
    for (const [stage, el] of this.stageEls) {
      const i = SNAPSHOT_STAGES.indexOf(stage);
      el.dataset.state = i < index ? 'done' : i === index ? (stage === this.waitUntil ? 'done' : 'current') : 'todo';
    }
    const pct = Math.round(snapshotProgress(status, this.waitUntil) * 100);
    this.fill.style.width = `${pct}%`;
    this.bar.setAttribute('aria-valuenow', String(pct));
    this.bar.setAttribute('aria-valuetext', status);
    this.root.dataset.status = status;
    if (this.seen.at(-1) !== status) this.seen.push(status);
    this.root.dataset.seen = this.seen.join(' ');
    this.line.replaceChildren(h('code', {}, snapshot.snapshotId), ` is ${status} after ${elapsed(this.ms)}`);
    announce(`Snapshot ${status} after ${elapsed(this.ms)}`);
  }

  /** Ends the wait: `state` is done, failed or cancelled. */
  finish(state, ...message) {
    this.stop();
    if (!this.root) return;
    this.tick();
    this.root.dataset.state = state;
    if (state !== 'done') {
      for (const el of this.stageEls.values()) if (el.dataset.state === 'current') el.dataset.state = state;
    }
    this.line.replaceChildren(...message);
  }

  stop() {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * Replaces the rows of a table body without losing the keyboard focus: a focused row button
 * (identified by its row's `data-key` and its `data-action`) is focused again in the new rows.
 */
export function replaceRows(tbody, rows) {
  const active = document.activeElement;
  let key;
  let action;
  if (active && tbody.contains(active)) {
    key = active.closest('tr')?.dataset.key;
    action = active.dataset.action;
  }
  tbody.replaceChildren(...rows);
  if (key !== undefined) {
    const again = [...tbody.querySelectorAll('tr')].find((tr) => tr.dataset.key === key)?.querySelector(`[data-action="${action}"]`);
    if (again && !again.disabled) again.focus();
    else tbody.closest('section')?.querySelector('.card-head button')?.focus();
  }
}
