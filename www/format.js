// Pure formatting helpers (no DOM), so they can be tested in Node as well.

/** 1536 -> "1.5 KB". Binary multiples, written the way people read them. */
export function humanBytes(bytes) {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = value < 10 ? 1 : 0;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** A Date relative to `now`: "just now", "12 s ago", "3 min ago", "2 h ago", "4 days ago". */
export function relativeTime(date, now = Date.now()) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return '—';
  const seconds = Math.round((now - date.getTime()) / 1000);
  if (seconds < -5) return 'in the future';
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  return `${days} days ago`;
}

/** A short duration: "38 ms", "1.4 s", "2 min 05 s". */
export function duration(ms) {
  if (!(ms >= 0)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return elapsed(ms);
}

/** Milliseconds -> "0.4 s", "12.3 s", "2 min 05 s" (a clock: always tenths below a minute). */
export function elapsed(ms) {
  if (!(ms >= 0)) return '—';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const total = Math.floor(ms / 1000);
  return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, '0')} s`;
}

/** "4 CPUs · 2048 MB" from the library's SandboxResources. */
export function resources(res) {
  if (!res) return '—';
  const parts = [];
  if (typeof res.cpus === 'number') parts.push(`${res.cpus} CPU${res.cpus === 1 ? '' : 's'}`);
  if (typeof res.memoryMb === 'number') parts.push(`${res.memoryMb} MB`);
  return parts.length ? parts.join(' · ') : '—';
}

/**
 * The parts of an error worth showing: its class, HTTP status, message and trace id. Works for
 * the package's error classes (which set `name`), TypeError/RangeError for bad arguments, and
 * anything else that was thrown.
 */
export function describeError(error) {
  if (error === null || typeof error !== 'object') {
    return { name: 'Error', message: String(error), statusCode: undefined, traceId: undefined, code: undefined, retryable: undefined };
  }
  const message = typeof error.responseMessage === 'string' && error.responseMessage
    ? error.responseMessage
    : String(error.message ?? error);
  return {
    name: typeof error.name === 'string' && error.name ? error.name : 'Error',
    message,
    statusCode: typeof error.statusCode === 'number' ? error.statusCode : undefined,
    traceId: typeof error.traceId === 'string' && error.traceId ? error.traceId : undefined,
    code: typeof error.code === 'string' && error.code ? error.code : undefined,
    retryable: typeof error.retryable === 'boolean' ? error.retryable : undefined,
  };
}

/** Whether `error` is what an aborted call rejects with. */
export function isAbort(error, signal) {
  return (signal !== undefined && signal.aborted && error === signal.reason)
    || (error !== null && typeof error === 'object' && error.name === 'AbortError');
}

/**
 * An optional positive number from a form field: '' -> undefined (inherit / default),
 * otherwise the number, which the library validates (so "-1" reaches it and is refused there).
 */
export function optionalNumber(text) {
  const trimmed = String(text ?? '').trim();
  if (trimmed === '') return undefined;
  return Number(trimmed);
}

/** The snapshot stages in order, for progress indicators. */
export const SNAPSHOT_STAGES = ['in_progress', 'local_ready', 'completed'];

/** Fraction of the way to `waitUntil` (0..1) a snapshot status represents. */
export function snapshotProgress(status, waitUntil = 'completed') {
  const target = SNAPSHOT_STAGES.indexOf(waitUntil) + 1;
  const index = SNAPSHOT_STAGES.indexOf(status);
  if (index < 0) return 0;
  return Math.min(1, (index + 1) / target);
}
