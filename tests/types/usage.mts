// Compiled with `tsc --strict --noEmit` in the tests: every public function, option and error
// field, typed without `any`. A wrong declaration fails the build.
import {
  SandboxClient,
  Sandbox,
  SandboxError,
  RemoteAPIError,
  SandboxNotFoundError,
  SnapshotNotFoundError,
  SandboxConnectionError,
  SnapshotFailedError,
  WaitTimeoutError,
  type SnapshotInfo,
  type SnapshotStatus,
  type SandboxInfo,
  type CommandResult,
  type DirectoryEntry,
  type CreateSnapshotResult,
  type HttpAgent,
  type Traced,
} from 'tensorlake-snapshots';

export async function everything(): Promise<void> {
  const client = new SandboxClient({
    apiUrl: 'http://127.0.0.1:8900',
    apiKey: 'key',
    namespace: 'default',
    organizationId: 'org',
    projectId: 'proj',
    requestTimeout: 30,
    maxRetries: 3,
    maxResponseBytes: 1 << 20,
    fetch: (url, init) => fetch(url, init),
    dangerouslyAllowBrowser: false,
  });
  const viaToken = new SandboxClient({ tokenProvider: async () => 'token' });
  // Any http.Agent fits (typed structurally, so no @types/node is needed to compile this).
  const agent: HttpAgent = { maxSockets: 16, destroy: () => undefined };
  const viaAgent = new SandboxClient({ httpAgent: agent });
  const local: SandboxClient = SandboxClient.forLocalhost({ apiUrl: 'http://127.0.0.1:8900', namespace: 'default' });
  const controller = new AbortController();
  const signal = controller.signal;

  const created: Traced<CreateSnapshotResult> = await client.snapshot('sbx', { snapshotType: 'memory', signal });
  const id: string = created.snapshotId;
  const info: Traced<SnapshotInfo> = await client.getSnapshot(id, { signal });
  const status: SnapshotStatus = info.status;
  const when: Date | undefined = info.createdAt;
  const size: number | undefined = info.sizeBytes;
  const list: Traced<SnapshotInfo[]> = await client.listSnapshots({ sandboxId: 'sbx', signal });
  const nothing: void = await client.deleteSnapshot(id);
  const waited: Traced<SnapshotInfo> = await client.snapshotAndWait('sbx', {
    timeout: 300,
    pollInterval: 1,
    waitUntil: 'completed',
    snapshotType: 'filesystem',
    signal,
    onStatus: (s: SnapshotInfo) => console.log(s.status, s.error),
  });
  await client.waitForSnapshot(id, { waitUntil: 'local_ready' });
  for await (const s of client.watchSnapshot(id, { pollInterval: 0.5 })) {
    const st: SnapshotStatus = s.status;
    console.log(st);
  }

  const sandboxInfo: Traced<SandboxInfo> = await client.createSandbox({
    image: 'img', cpus: 2, memoryMb: 1024, diskMb: 2048, timeoutSecs: 600, entrypoint: ['sh'], snapshotId: id, name: 'n', signal,
  });
  const cpus: number | undefined = sandboxInfo.resources.cpus;
  const sandbox: Traced<Sandbox> = await client.createAndConnect({ snapshotId: id, cpus: 4, memoryMb: 2048, startupTimeout: 60 });
  const again: Traced<Sandbox> = await client.connect(sandbox.sandboxId);
  const one: Traced<SandboxInfo> = await client.getSandbox(again.sandboxId);
  const all: Traced<SandboxInfo[]> = await client.listSandboxes();
  await client.deleteSandbox(one.sandboxId);

  const result: Traced<CommandResult> = await sandbox.run('ls', { args: ['-l'], env: { A: 'b' }, workingDir: '/', timeout: 5, signal });
  const shell: Traced<CommandResult> = await sandbox.commands.run('echo hi', { env: { A: 'b' } });
  const code: number = result.exitCode + shell.exitCode;
  const bytes: Traced<Uint8Array> = await sandbox.readFile('/data/output.csv');
  await sandbox.writeFile('/x', 'text');
  await sandbox.writeFile('/x', new Uint8Array([1]));
  await sandbox.deleteFile('/x');
  const entries: Traced<DirectoryEntry[]> = await sandbox.listDirectory('/');
  const isDir: boolean = entries[0]?.isDir ?? false;
  await sandbox.snapshot();
  await sandbox.snapshotAndWait({ waitUntil: 'local_ready' });
  const mine: Traced<SandboxInfo> = await sandbox.info();
  await sandbox.terminate();
  const described: { apiUrl: string; namespace: string; credentials: string } = client.toJSON();
  // Every object or array a call resolves to carries traceId (README, "Trace ids").
  const traces: string[] = [created.traceId, info.traceId, list.traceId, waited.traceId, sandboxInfo.traceId,
    sandbox.traceId, again.traceId, one.traceId, all.traceId, result.traceId, shell.traceId, bytes.traceId,
    entries.traceId, mine.traceId, (await client.waitForSnapshot(id)).traceId, (await sandbox.snapshot()).traceId,
    (await sandbox.snapshotAndWait()).traceId, (await sandbox.checkpoint({ wait: false })).traceId];

  try {
    await client.getSnapshot('x');
  } catch (e) {
    if (e instanceof SnapshotNotFoundError) { const sid: string = e.snapshotId; const sc: number = e.statusCode; console.log(sid, sc); }
    if (e instanceof SandboxNotFoundError) { const sid: string = e.sandboxId; console.log(sid); }
    if (e instanceof RemoteAPIError) { const r: boolean = e.retryable; const m: string = e.responseMessage; const ra: number | undefined = e.retryAfter; const u: boolean = e.outcomeUnknown; console.log(r, m, ra, u); }
    if (e instanceof SandboxConnectionError) { const t: boolean = e.timedOut; const c: unknown = e.cause; console.log(t, c); }
    if (e instanceof SnapshotFailedError) { const s: SnapshotInfo = e.snapshot; const why: string | undefined = e.responseMessage; console.log(s, why); }
    if (e instanceof WaitTimeoutError) { const last: SnapshotStatus | undefined = e.lastStatus; const t: number = e.timeout; console.log(last, t, e.waitUntil); }
    if (e instanceof SandboxError) { const trace: string | undefined = e.traceId; const c: string | undefined = e.code; console.log(trace, c, e.message, e.name); }
  }
  console.log(viaToken, viaAgent, local, status, when, size, list, nothing, waited, cpus, all, code, bytes, isDir, mine, described, traces);
}

// @ts-expect-error: snapshotType is a closed union.
void new SandboxClient().snapshot('sbx', { snapshotType: 'disk' });
// @ts-expect-error: waitUntil is a closed union.
void new SandboxClient().waitForSnapshot('s', { waitUntil: 'done' });
// @ts-expect-error: commands.run takes no args option.
void ({} as Sandbox).commands.run('ls', { args: ['x'] });
