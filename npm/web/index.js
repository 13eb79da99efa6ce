// `tensorlake-snapshots/web`: for those who load the wasm themselves. Call `await init()` (or
// `init({ module_or_path })`, or `initSync({ module })`) before using anything else.
//
// wasm-bindgen's web glue (./tensorlake_snapshots.js, as generated, built with
// --omit-default-module-path) names no .wasm of its own: the package ships one, at its root,
// shared with the Node glue, and `init()` without an argument is given that one. The
// `new URL(..., import.meta.url)` form is what bundlers recognise to emit it as an asset.
import glueInit from './tensorlake_snapshots.js';

export * from './tensorlake_snapshots.js';
export { initSync } from './tensorlake_snapshots.js';
export { SandboxError, RemoteAPIError, SandboxNotFoundError, SnapshotNotFoundError, SandboxConnectionError, SnapshotFailedError, WaitTimeoutError } from './errors.js';

/** Loads and instantiates the wasm (the package's own unless told otherwise); safe to call twice. */
export default function init(moduleOrPath) {
  return glueInit(moduleOrPath ?? { module_or_path: new URL('../tensorlake_snapshots_bg.wasm', import.meta.url) });
}
