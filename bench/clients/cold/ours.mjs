// Cold start, our package through `import`: load, instantiate the wasm, one getSnapshot.
import { SandboxClient } from 'tensorlake-snapshots';

const [url, namespace, id] = process.argv.slice(2);
const info = await SandboxClient.forLocalhost({ apiUrl: url, namespace }).getSnapshot(id);
console.log(JSON.stringify({ id: info.snapshotId, inProcessMs: performance.now() }));
