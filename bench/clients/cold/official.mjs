// Cold start of the official TypeScript SDK (tensorlake@0.5.89, native addon, Node 22).
import { SandboxClient } from 'tensorlake';

const [url, namespace, id] = process.argv.slice(2);
const info = await SandboxClient.forLocalhost({ apiUrl: url, namespace }).getSnapshot(id);
console.log(JSON.stringify({ id: info.snapshotId, inProcessMs: performance.now() }));
