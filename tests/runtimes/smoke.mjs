// Runtime matrix, ESM: `import` the package by name, so the runtime picks its entry from the
// exports map; run the smoke; print one JSON line. Args: API URL, tag.
import * as lib from 'tensorlake-snapshots';
import { smoke } from './smoke-core.mjs';

const args = globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2);
const [apiUrl, tag] = args;
// Which file the runtime resolved the package to (a Promise on Node 18, a string elsewhere).
let entry = null;
try { entry = await import.meta.resolve('tensorlake-snapshots'); } catch (e) { entry = `unresolvable: ${e}`; }
const report = await smoke(lib, apiUrl, tag);
console.log(JSON.stringify({ via: 'import', entry, ...report }));
