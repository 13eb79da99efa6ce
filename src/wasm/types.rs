//! The TypeScript types of the public API that wasm-bindgen cannot derive from signatures: option
//! objects, results, statuses and the error classes. Appended to the generated `.d.ts`.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Snapshot statuses the API documents; any other string a newer server sends is passed through. */
export type SnapshotStatus = "in_progress" | "local_ready" | "completed" | "failed" | "deleting" | "replicating" | (string & {});
/** What a snapshot captures. `memory` snapshots must be restored with their original resources. */
export type SnapshotType = "memory" | "filesystem";
/** The status a wait ends on: `local_ready` (restorable, the default) or `completed` (durably stored). */
export type WaitUntil = "local_ready" | "completed";
/** Sandbox statuses; any other string a newer server sends is passed through. */
export type SandboxStatus = "pending" | "running" | "snapshotting" | "suspending" | "suspended" | "terminated" | "timeout" | "failed" | (string & {});

/**
 * What the `httpAgent` option needs of Node's `http.Agent` / `https.Agent` (typed structurally so
 * that the declarations do not require `@types/node`; any agent, a proxy agent too, fits).
 */
export interface HttpAgent {
  maxSockets: number;
  destroy(): void;
}

export interface SandboxClientOptions {
  /** API URL. Default: `TENSORLAKE_API_URL` (Node, Deno, Bun), else `https://api.tensorlake.ai`. */
  apiUrl?: string;
  /** API key, sent as `Authorization: Bearer`. Default: `TENSORLAKE_API_KEY`. In a browser it needs `dangerouslyAllowBrowser`. */
  apiKey?: string;
  /** Namespace. Default: `INDEXIFY_NAMESPACE`, else `default`. */
  namespace?: string;
  /** Organization id (sent only together with `projectId`). */
  organizationId?: string;
  /** Project id (sent only together with `organizationId`). */
  projectId?: string;
  /** Timeout of each HTTP request, seconds. Default 300. */
  requestTimeout?: number;
  /** Retries of retryable failures (network errors, 429, 502, 503, 504), 0 to 20. Default 3. */
  maxRetries?: number;
  /** Largest response body accepted, bytes after decompression, 1024 to 2147483647; a bigger one fails with code `RESPONSE_TOO_LARGE`. Default 64 MiB. */
  maxResponseBytes?: number;
  /** Called before each request for a bearer token (for browsers: fetch a short-lived token from your server). */
  tokenProvider?: () => string | null | undefined | Promise<string | null | undefined>;
  /** A fetch implementation to use instead of the global one. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /**
   * Node (and Bun, Deno): the `http.Agent` or `https.Agent` requests go through, for example a
   * proxy agent (`new HttpsProxyAgent(process.env.HTTPS_PROXY)`). Default: keep-alive agents of
   * the package's own. Not with `fetch`; refused in browsers.
   */
  httpAgent?: HttpAgent;
  /** Allow `apiKey` in a browser, where every visitor can read it. */
  dangerouslyAllowBrowser?: boolean;
}

export interface CallOptions {
  /** Aborts the call; it then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

export interface SnapshotOptions extends CallOptions {
  /** Default: the server's (`filesystem`). */
  snapshotType?: SnapshotType;
}

export interface ListSnapshotsOptions extends CallOptions {
  /** Only this sandbox's snapshots. */
  sandboxId?: string;
}

export interface WaitOptions extends CallOptions {
  /** Seconds before the wait gives up with `WaitTimeoutError`. Default 300. It bounds the whole call: a `snapshotAndWait` whose snapshot request or recovery listing hangs ends by then too, give or take 0.5 s. */
  timeout?: number;
  /** Seconds between polls. Default 1, at least 0.01. */
  pollInterval?: number;
  /** Default `local_ready`. */
  waitUntil?: WaitUntil;
  /** Called once per status change, with the snapshot as seen. If it throws, the wait rejects with what it threw. It is called synchronously: a promise it returns is not awaited, so an `async` callback must catch its own errors (a rejection is unhandled). */
  onStatus?: (snapshot: SnapshotInfo) => void;
}

export interface SnapshotAndWaitOptions extends WaitOptions {
  snapshotType?: SnapshotType;
}

export interface CreateSnapshotResult {
  snapshotId: string;
  status: SnapshotStatus;
}

export interface SnapshotInfo {
  snapshotId: string;
  namespace: string | undefined;
  /** The sandbox the snapshot was taken of. */
  sandboxId: string | undefined;
  baseImage: string | undefined;
  status: SnapshotStatus;
  snapshotType: SnapshotType | undefined;
  /** Why the snapshot failed, when it did. */
  error: string | undefined;
  /** Durable location, once `completed`. */
  snapshotUri: string | undefined;
  snapshotFormatVersion: string | undefined;
  sizeBytes: number | undefined;
  rootfsDiskBytes: number | undefined;
  createdAt: Date | undefined;
}

export interface CreateSandboxOptions extends CallOptions {
  image?: string;
  /** CPUs (> 0). Default 1 for a new sandbox; inherited from the snapshot on restore. */
  cpus?: number;
  /** Memory in MiB. Default 1024 for a new sandbox; inherited from the snapshot on restore. */
  memoryMb?: number;
  diskMb?: number;
  timeoutSecs?: number;
  entrypoint?: string[];
  /** Restore from this snapshot. */
  snapshotId?: string;
  name?: string;
}

export interface CreateAndConnectOptions extends CreateSandboxOptions {
  /** Seconds to wait for the sandbox to run. Default 300. */
  startupTimeout?: number;
}

export interface SandboxResources {
  cpus: number | undefined;
  memoryMb: number | undefined;
  diskMb: number | undefined;
}

export interface SandboxInfo {
  sandboxId: string;
  namespace: string | undefined;
  status: SandboxStatus;
  image: string | undefined;
  resources: SandboxResources;
  sandboxUrl: string | undefined;
  routingHint: string | undefined;
  name: string | undefined;
  timeoutSecs: number | undefined;
  entrypoint: string[] | undefined;
  terminationReason: string | undefined;
  errorDetails: unknown;
  createdAt: Date | undefined;
  terminatedAt: Date | undefined;
}

export interface RunOptions extends CallOptions {
  /** Arguments of the program. */
  args?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  workingDir?: string;
  /** Seconds after which the sandbox kills the process; the call then waits that long for it. Without it the call gives up after `requestTimeout` (default 300 s) with a `SandboxConnectionError` (`outcomeUnknown`; the local server then kills the command): give long commands a `timeout`. */
  timeout?: number;
}

export type ShellRunOptions = Omit<RunOptions, "args">;

export interface CommandResult {
  /** Exit code, or minus the signal number if the process was killed. */
  exitCode: number;
  /** Standard output lines joined with "\n". */
  stdout: string;
  stderr: string;
}

export interface DirectoryEntry {
  name: string;
  isDir: boolean;
  size: number | undefined;
  modifiedAt: Date | undefined;
}

/** Base class of the errors this package throws (argument errors are TypeError/RangeError; aborts reject with `signal.reason`). */
export class SandboxError extends Error {
  /** Trace id (W3C) of the request that failed, for the server's logs. */
  traceId?: string;
  /** A stable code for errors without an HTTP status: `INVALID_RESPONSE`, `RESPONSE_TOO_LARGE`, `BROWSER_API_KEY`, `CREDENTIALS` (a tokenProvider threw, timed out or returned an unusable token; not retried), `SANDBOX_START_TIMEOUT`, `SANDBOX_TERMINATED`, `OUTCOME_UNKNOWN`. */
  code?: string;
}
/** The API answered with an error status. */
export class RemoteAPIError extends SandboxError {
  statusCode: number;
  /** The server's message. */
  responseMessage: string;
  /** Whether retrying later can succeed (429, 502, 503, 504). */
  retryable: boolean;
  /** Seconds the server asked to wait (`Retry-After`). */
  retryAfter?: number;
  /** True when a request that creates something (a snapshot, a sandbox, a command run) failed so that it is unknown whether it took effect. */
  outcomeUnknown: boolean;
}
/** HTTP 404 on a route about one sandbox. */
export class SandboxNotFoundError extends RemoteAPIError {
  sandboxId: string;
}
/** HTTP 404 on a route about one snapshot. */
export class SnapshotNotFoundError extends RemoteAPIError {
  snapshotId: string;
}
/** No usable response: connection refused or lost, or the request timed out. `cause` is the host's error. */
export class SandboxConnectionError extends SandboxError {
  timedOut: boolean;
  /** True when a request that creates something (a snapshot, a sandbox, a command run) failed so that it is unknown whether it took effect. */
  outcomeUnknown: boolean;
}
/** The snapshot waited for ended `failed`. */
export class SnapshotFailedError extends SandboxError {
  snapshotId: string;
  /** The snapshot as last seen. */
  snapshot: SnapshotInfo;
  /** The server's reason, if it gave one. */
  responseMessage?: string;
}
/** The wait ran out of time. */
export class WaitTimeoutError extends SandboxError {
  snapshotId: string;
  waitUntil: WaitUntil;
  /** The last status seen, if any poll succeeded. */
  lastStatus?: SnapshotStatus;
  /** The timeout, seconds. */
  timeout: number;
}
"#;
