// Cold start of the hand-written floor: one fetch and JSON.parse, no library at all.
const [url, namespace, id] = process.argv.slice(2);
const res = await fetch(`${url}/v1/namespaces/${namespace}/snapshots/${id}`);
if (!res.ok) throw new Error(String(res.status));
const info = JSON.parse(await res.text());
console.log(JSON.stringify({ id: info.id, inProcessMs: performance.now() }));
