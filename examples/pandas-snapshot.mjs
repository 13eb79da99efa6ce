// Tensorlake's documented snapshot example, line for line, with this package's API: install numpy
// and pandas in a sandbox, write a CSV with pandas, snapshot, restore a bigger sandbox from the
// snapshot and read the CSV back (pandas is still importable there).
//
//   node examples/pandas-snapshot.mjs                # against a local server (npm start)
//   TENSORLAKE_API_URL=https://api.tensorlake.ai TENSORLAKE_API_KEY=... node examples/pandas-snapshot.mjs
//
// The sandbox downloads the packages from PyPI, so it needs network (the local server gives its
// sandboxes user-mode networking by default). PACKAGES="six" installs something else first, which
// the tests use to stay fast; the rest of the script is the documented example unchanged.
import { SandboxClient, SandboxError } from 'tensorlake-snapshots';

const client = process.env.TENSORLAKE_API_URL
  ? new SandboxClient()
  : SandboxClient.forLocalhost({ apiUrl: process.env.LOCAL_API_URL ?? 'http://127.0.0.1:8900' });
const packages = process.env.PACKAGES ?? 'numpy pandas';

/** Runs a shell command and fails loudly (with its output) when it does not exit 0. */
async function run(sandbox, command) {
  const result = await sandbox.commands.run(command, { timeout: 600 });
  if (result.exitCode !== 0) {
    throw new Error(`\`${command}\` exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

let sandbox;
let restored;
let snapshot;
try {
  sandbox = await client.createAndConnect();
  console.log(`sandbox ${sandbox.sandboxId}`);
  await run(sandbox, `pip install ${packages}`);
  if (packages === 'numpy pandas') {
    await run(sandbox, "python -c \"import pandas as pd; pd.DataFrame({'a': [1,2,3]}).to_csv('/data/output.csv')\"");
  } else {
    // The small variant: the same file, written without pandas.
    await run(sandbox, "python -c \"open('/data/output.csv', 'w').write(',a\\n0,1\\n1,2\\n2,3\\n')\"");
  }
  snapshot = await client.snapshotAndWait(sandbox.sandboxId);
  console.log(`snapshot ${snapshot.snapshotId} (${snapshot.sizeBytes} bytes)`);

  restored = await client.createAndConnect({ snapshotId: snapshot.snapshotId, cpus: 4, memoryMb: 2048 });
  const info = await restored.info();
  console.log(`restored ${restored.sandboxId}: ${info.resources.cpus} CPUs, ${info.resources.memoryMb} MB`);
  console.log((await run(restored, 'cat /data/output.csv')).stdout);
  const module = packages.split(' ').at(-1);
  const imported = await run(restored, `python -c "import ${module}; print('${module}', ${module}.__version__)"`);
  console.log(imported.stdout);
} catch (err) {
  if (err instanceof SandboxError) console.error(`${err.name}: ${err.message} (trace ${err.traceId})`);
  else console.error(err.message);
  process.exitCode = 1;
} finally {
  await Promise.allSettled([sandbox?.terminate(), restored?.terminate(), snapshot && client.deleteSnapshot(snapshot.snapshotId)]);
}
