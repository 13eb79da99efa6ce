// Cold start, our package through `require`: load, instantiate the wasm, one getSnapshot.
const { SandboxClient } = require('tensorlake-snapshots');

const [url, namespace, id] = process.argv.slice(2);
SandboxClient.forLocalhost({ apiUrl: url, namespace }).getSnapshot(id).then((info) => {
  console.log(JSON.stringify({ id: info.snapshotId, inProcessMs: performance.now() }));
});
