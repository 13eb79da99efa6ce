// The documented snapshot workflow, end to end: create a sandbox, write a file in it, snapshot it
// and wait, restore a bigger sandbox from the snapshot, read the file back, clean up.
//
//   node examples/workflow.mjs                       # against a local server (npm start)
//   TENSORLAKE_API_URL=https://api.tensorlake.ai TENSORLAKE_API_KEY=... node examples/workflow.mjs
import { SandboxClient, SandboxError } from 'tensorlake-snapshots';

const client = process.env.TENSORLAKE_API_URL
  ? new SandboxClient()
  : SandboxClient.forLocalhost({ apiUrl: process.env.LOCAL_API_URL ?? 'http://127.0.0.1:8900' });
console.log(`Using ${client}`);

const step = (text) => console.log(`\n> ${text}`);
let sandbox;
let restored;
let snapshot;
try {
  step('create a sandbox');
  sandbox = await client.createAndConnect();
  console.log(`  ${sandbox.sandboxId} is running`);

  step('write /data/output.csv in it');
  const write = await sandbox.commands.run("mkdir -p /data && printf 'city,temp\\nLisbon,21\\n' > /data/output.csv");
  if (write.exitCode !== 0) throw new Error(`the write failed: ${write.stderr}`);

  step('snapshot it and wait');
  const started = Date.now();
  snapshot = await client.snapshotAndWait(sandbox.sandboxId, {
    onStatus: (s) => console.log(`  ${((Date.now() - started) / 1000).toFixed(1)} s  ${s.status}`),
  });
  console.log(`  ${snapshot.snapshotId}: ${snapshot.sizeBytes} bytes, taken ${snapshot.createdAt.toISOString()}`);

  step('restore a new sandbox from it with 4 CPUs and 2048 MB');
  restored = await client.createAndConnect({ snapshotId: snapshot.snapshotId, cpus: 4, memoryMb: 2048 });
  const info = await restored.info();
  console.log(`  ${restored.sandboxId}: ${info.resources.cpus} CPUs, ${info.resources.memoryMb} MB`);

  step('read the file back from the restored sandbox');
  const cat = await restored.commands.run('cat /data/output.csv');
  console.log(cat.stdout.replace(/^/gm, '  '));
  if (cat.stdout !== 'city,temp\nLisbon,21') throw new Error('the restored file differs');
} catch (err) {
  if (err instanceof SandboxError) console.error(`\n${err.name}: ${err.message} (trace ${err.traceId})`);
  process.exitCode = 1;
  if (!(err instanceof SandboxError)) throw err;
} finally {
  step('clean up');
  await Promise.allSettled([sandbox?.terminate(), restored?.terminate(), snapshot && client.deleteSnapshot(snapshot.snapshotId)]);
  console.log('  done');
}
