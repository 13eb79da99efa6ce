// Types of `tensorlake-snapshots/web`: wasm-bindgen's declarations of the web glue, with `init()`
// as index.js defines it (the argument is optional: the package's own .wasm by default).
import type { InitInput, InitOutput } from './tensorlake_snapshots.js';

export * from './tensorlake_snapshots.js';
export { initSync } from './tensorlake_snapshots.js';

/** Loads and instantiates the wasm: the package's own `.wasm` unless given another; safe to call twice. */
export default function init(
  module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<InitOutput>;
