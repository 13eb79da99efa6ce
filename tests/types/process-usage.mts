// Compiled with `tsc --strict --noEmit` in the tests: every process, stream and lifecycle call of
// issue 12, with its options and results, typed without `any`.
import {
  SandboxClient,
  type Sandbox,
  type ProcessInfo,
  type ProcessStatus,
  type OutputEvent,
  type OutputResponse,
  type SendSignalResponse,
  type SandboxInfo,
  type SnapshotInfo,
  type NetworkConfig,
  type SandboxStatus,
  type Traced,
  type ProcessUser,
  type CreateSnapshotResult,
} from 'tensorlake-snapshots';

export async function processes(client: SandboxClient, signal: AbortSignal): Promise<void> {
  const sandbox: Sandbox = await client.createAndConnect({ allowInternetAccess: false, allowOut: ['10.0.0.0/8'], denyOut: ['10.1.0.0/16'], signal });
  const user: ProcessUser = { uid: 1000, gid: 1000 };
  const started: Traced<ProcessInfo> = await sandbox.startProcess('sh', {
    args: ['-c', 'cat'], env: { A: '1' }, workingDir: '/tmp', stdinMode: 'pipe', user, name: 'reader', signal,
  });
  const traceId: string = started.traceId;
  const pid: number = started.pid;
  const processName: string | undefined = started.name;
  const status: ProcessStatus = started.status;
  const startedAt: Date = started.startedAt;
  const endedAt: Date | undefined = started.endedAt;
  const exitCode: number | undefined = started.exitCode;
  const list: ProcessInfo[] = await sandbox.listProcesses({ signal });
  const byName: ProcessInfo = await sandbox.getProcess('reader', { signal });
  await sandbox.writeStdin(pid, 'text', { signal });
  await sandbox.writeStdin(pid, new Uint8Array([1, 2]));
  await sandbox.closeStdin(pid, { signal });
  const sent: SendSignalResponse = await sandbox.sendSignal(pid, 15, { signal });
  const out: OutputResponse = await sandbox.getStdout(pid, { signal });
  const err: OutputResponse = await sandbox.getStderr(pid);
  const all: OutputResponse = await sandbox.getOutput('reader');
  const lines: string[] = out.lines;
  const count: number = all.lineCount + err.lineCount;
  await sandbox.killProcess(pid, { signal });
  for await (const event of sandbox.followStdout(pid, { signal })) {
    const line: string = event.line;
    const at: Date = event.timestamp;
    const stream: string | undefined = event.stream;
    void [line, at, stream];
    break;
  }
  const errs: AsyncIterableIterator<OutputEvent> = sandbox.followStderr(pid);
  const both: AsyncIterableIterator<OutputEvent> = sandbox.followOutput('reader', { signal });
  const run = await sandbox.run('id', { args: ['-u'], user: 'root', signal });
  const shell = await sandbox.commands.run('id -u', { user: { name: 'nobody' } });

  await sandbox.suspend({ wait: true, timeout: 60, pollInterval: 0.5, signal });
  await sandbox.resume({ wait: false });
  const now: SandboxStatus = await sandbox.status({ signal });
  const updated: Traced<SandboxInfo> = await sandbox.update({ name: 'n', exposedPorts: [8080], allowUnauthenticatedAccess: true, signal });
  const network: NetworkConfig | undefined = updated.network;
  const ports: number[] | undefined = updated.exposedPorts;
  const pending: string | undefined = updated.pendingReason;
  const checkpoint: Traced<SnapshotInfo> | CreateSnapshotResult = await sandbox.checkpoint({ checkpointType: 'memory', waitUntil: 'completed', timeout: 60, pollInterval: 1, signal });
  await sandbox.checkpoint({ wait: false });
  const snapshots: Traced<SnapshotInfo[]> = await sandbox.listSnapshots({ signal });
  const listTrace: string = snapshots.traceId;

  await client.suspend(sandbox.sandboxId, { wait: false, signal });
  await client.resume(sandbox.sandboxId, { timeout: 30 });
  const viaClient: SandboxInfo = await client.update(sandbox.sandboxId, { exposedPorts: [], signal });
  const oneSandbox: SnapshotInfo[] = await client.listSnapshots({ sandboxId: sandbox.sandboxId, signal });
  void [traceId, processName, status, startedAt, endedAt, exitCode, list, byName, sent, lines, count, errs, both, run, shell, now, network,
    ports, pending, checkpoint, listTrace, viaClient, oneSandbox];
}
