// `tensorlake-snapshots/web`: for those who load the wasm themselves. Call `await init()` (or
// `init({ module_or_path })`, or `initSync({ module })`) before using anything else.
export * from './glue.js';
export { default, initSync } from './glue.js';
export { SandboxError, RemoteAPIError, SandboxNotFoundError, SnapshotNotFoundError, SandboxConnectionError, SnapshotFailedError, WaitTimeoutError } from './errors.js';
