// Browsers, bundlers and other ESM runtimes: initialises the shared .wasm (fetched next to this
// file) once, then exports the API.
import init from './glue.js';
await init();
export * from './glue.js';
export { SandboxError, RemoteAPIError, SandboxNotFoundError, SnapshotNotFoundError, SandboxConnectionError, SnapshotFailedError, WaitTimeoutError } from './errors.js';
