//! TypeScript declarations of the process, stream and lifecycle calls, appended to the generated
//! `.d.ts` beside those of `types`. `SandboxInfo`, `CreateSandboxOptions` and `RunOptions` are
//! extended by declaration merging, so the original declarations stay as they are.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(typescript_custom_section)]
const PROCESS_TYPES: &'static str = r#"
/**
 * A result with the W3C trace id of the request that produced it, as the official SDK's
 * `Traced<T>`. Here `traceId` is a non-enumerable, read-only property: `JSON.stringify`, spreads
 * and deep comparisons see the record alone.
 */
export type Traced<T> = T & { readonly traceId: string };

/** A process's state; any other string a newer server sends is passed through. */
export type ProcessStatus = "running" | "exited" | "signaled" | "oom_killed" | (string & {});
/** `pipe`: stdin stays open for `writeStdin` until `closeStdin`. `closed` (the default): none. */
export type StdinMode = "closed" | "pipe";
/** Who runs a command: `"root"`, `"1000"`, `"1000:100"`, a user name of the image, or ids. */
export type ProcessUser = string | { uid: number; gid?: number } | { name: string; gid?: number };

export interface RunOptions {
  /** The user to run as. Default: the image's `USER`. */
  user?: ProcessUser;
}

export interface StartProcessOptions extends CallOptions {
  args?: string[];
  env?: Record<string, string>;
  workingDir?: string;
  /** Default `closed`. */
  stdinMode?: StdinMode;
  user?: ProcessUser;
  /** A name to address the process by instead of its PID (not all digits). */
  name?: string;
}

/** A process as the sandbox reports it; fields a newer server adds are passed through. */
export interface ProcessInfo {
  pid: number;
  /** The name it was started with (`startProcess`'s `name`), by which calls can address it. */
  name?: string | undefined;
  status: ProcessStatus;
  /** Set once it has exited. */
  exitCode?: number | undefined;
  /** The signal that ended it, if one did. */
  signal?: number | undefined;
  /** True while a `pipe` stdin is open and the process runs. */
  stdinWritable?: boolean | undefined;
  command: string;
  args: string[];
  startedAt: Date;
  endedAt?: Date | undefined;
}

export interface SendSignalResponse {
  success: boolean;
}

/** The lines a process's output kept so far (the newest, within the server's budget). */
export interface OutputResponse {
  pid: number;
  lines: string[];
  lineCount: number;
}

/** One line of output, as `followStdout`/`followStderr`/`followOutput` yield it. */
export interface OutputEvent {
  line: string;
  timestamp: Date;
  /** `stdout` or `stderr`. */
  stream?: string | undefined;
}

export interface SuspendResumeOptions extends CallOptions {
  /** Wait until the sandbox is `suspended` / `running`. Default true. */
  wait?: boolean;
  /** Seconds to wait. Default 300. */
  timeout?: number;
  /** Seconds between status polls. Default 1. */
  pollInterval?: number;
}

export interface CheckpointOptions extends SuspendResumeOptions {
  checkpointType?: SnapshotType;
  /** Default `local_ready`, which is enough to restore from. */
  waitUntil?: WaitUntil;
}

export interface UpdateSandboxOptions extends CallOptions {
  /** A new name. */
  name?: string;
  /** Whether exposed ports are reachable without credentials. */
  allowUnauthenticatedAccess?: boolean;
  /** Ports reachable through the sandbox proxy. */
  exposedPorts?: number[];
}

/** A sandbox's outbound network policy. */
export interface NetworkConfig {
  allowInternetAccess: boolean;
  allowOut: string[];
  denyOut: string[];
}

export interface CreateSandboxOptions {
  /** Default true; `false` blocks outbound traffic except `allowOut`. */
  allowInternetAccess?: boolean;
  /** Destinations allowed out: IP addresses or CIDRs (the local server refuses host names with a 400, as a packet filter cannot follow DNS). */
  allowOut?: string[];
  /** Destinations denied out (IP addresses or CIDRs); they win over `allowOut`. */
  denyOut?: string[];
}

/**
 * Beyond the fields decoded above, `SandboxInfo` keeps every field the server sent, camelCased
 * (`null` as `undefined`, `*At` as `Date`); these are the ones the official SDKs know.
 */
export interface SandboxInfo {
  /** The network policy (the wire's `network` or `network_policy`). */
  network?: NetworkConfig | undefined;
  allowUnauthenticatedAccess?: boolean | undefined;
  exposedPorts?: number[] | undefined;
  /** Why a `pending` sandbox is not running yet. */
  pendingReason?: string | undefined;
  autoResume?: boolean | undefined;
  poolId?: string | undefined;
  outcome?: string | undefined;
  ingressEndpoint?: string | undefined;
  /** The snapshot it was restored from. */
  snapshotId?: string | undefined;
  fileSystems?: unknown[] | undefined;
}
"#;
