// Runtime matrix, CommonJS: `require` the package by name; run the smoke; print one JSON line.
const lib = require('tensorlake-snapshots');

const [apiUrl, tag] = process.argv.slice(2);
const entry = require.resolve('tensorlake-snapshots');
import('./smoke-core.mjs')
  .then(({ smoke }) => smoke(lib, apiUrl, tag))
  .then((report) => console.log(JSON.stringify({ via: 'require', entry, ...report })))
  .catch((e) => { console.error(e); process.exitCode = 1; });
