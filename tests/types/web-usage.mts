// The `./web` entry: explicit initialisation for those who load the wasm themselves.
import init, { initSync, SandboxClient, SandboxError } from 'tensorlake-snapshots/web';

export async function start(bytes: BufferSource): Promise<SandboxClient> {
  await init();
  await init({ module_or_path: new URL('https://cdn.example/tensorlake_snapshots_bg.wasm') });
  initSync({ module: bytes });
  const client = SandboxClient.forLocalhost();
  try {
    await client.listSnapshots();
  } catch (e) {
    if (e instanceof SandboxError) console.log(e.traceId);
  }
  return client;
}
