// The exported error classes. They are JavaScript because a class that extends Error (so that
// `instanceof`, `name`, `stack` and `cause` behave as users expect) can only be written in
// JavaScript. The wasm module creates them through `createError`; the package entry points
// re-export the classes from this same module, so `instanceof` holds for what the calls throw.
//
// An ES module, as wasm-bindgen's web glue imports it; scripts/build.sh compiles a CommonJS copy
// (TypeScript's compiler) for the nodejs glue, which `require`s it.

/** Base class of every error this package throws, except argument errors (TypeError/RangeError) and aborts. */
export class SandboxError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'SandboxError';
  }
}

/** The API answered with an error status. */
export class RemoteAPIError extends SandboxError {
  constructor(message, options) {
    super(message, options);
    this.name = 'RemoteAPIError';
  }
}

/** The sandbox does not exist (HTTP 404 on a route about one sandbox). */
export class SandboxNotFoundError extends RemoteAPIError {
  constructor(message, options) {
    super(message, options);
    this.name = 'SandboxNotFoundError';
  }
}

/** The snapshot does not exist (HTTP 404 on a route about one snapshot). */
export class SnapshotNotFoundError extends RemoteAPIError {
  constructor(message, options) {
    super(message, options);
    this.name = 'SnapshotNotFoundError';
  }
}

/** The server could not be reached, the connection broke, or the request timed out. */
export class SandboxConnectionError extends SandboxError {
  constructor(message, options) {
    super(message, options);
    this.name = 'SandboxConnectionError';
  }
}

/** A snapshot being waited for ended in the `failed` status. */
export class SnapshotFailedError extends SandboxError {
  constructor(message, options) {
    super(message, options);
    this.name = 'SnapshotFailedError';
  }
}

/** A wait for a snapshot ran out of time. */
export class WaitTimeoutError extends SandboxError {
  constructor(message, options) {
    super(message, options);
    this.name = 'WaitTimeoutError';
  }
}

const CLASSES = {
  SandboxError,
  RemoteAPIError,
  SandboxNotFoundError,
  SnapshotNotFoundError,
  SandboxConnectionError,
  SnapshotFailedError,
  WaitTimeoutError,
};

// Called from Rust with the class name, the message and the error's fields.
export function createError(className, message, fields) {
  const Class = CLASSES[className] || SandboxError;
  const error = fields.cause === undefined ? new Class(message) : new Class(message, { cause: fields.cause });
  for (const key of Object.keys(fields)) {
    if (key !== 'cause' && fields[key] !== undefined) error[key] = fields[key];
  }
  return error;
}
