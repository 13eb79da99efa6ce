// Browsers, bundlers and other ESM runtimes: initialises the package's .wasm once (see index.js
// for where it is found), then exports the API.
import init from './index.js';

await init();
export * from './tensorlake_snapshots.js';
export { SandboxError, RemoteAPIError, SandboxNotFoundError, SnapshotNotFoundError, SandboxConnectionError, SnapshotFailedError, WaitTimeoutError } from './errors.js';
