// The JS/wasm boundary of decoding: typed reads of one field, and object literals for the records
// the API returns, built in one call from values the Rust decoder has already checked. Setting twelve properties one at a time from wasm costs twelve crossings
// of the JS/wasm boundary per record, which was most of the time of a 10,000-snapshot listing;
// a literal also gives every record the same hidden class, so code reading them stays fast.
// The typed reads exist for the same reason: a read and its type check in one crossing instead of
// two. No decision is made here: which wire field lands where, and with what type, is decided in
// Rust (core/src/models.rs, tested natively); these functions only implement `Json::string_field` and
// `Json::number_field` as core/src/platform.rs defines them.
//
// An ES module, as wasm-bindgen's web glue imports it; scripts/build.sh compiles a CommonJS copy
// (TypeScript's compiler) for the nodejs glue, which `require`s it.

// `value[key]` if it is a string, else undefined. `value` is never null (see core/src/platform.rs).
export function stringField(value, key) {
  const field = value[key];
  return typeof field === 'string' ? field : undefined;
}

// `value[key]` if it is a number, else NaN (which JSON cannot hold, so it safely means "absent",
// and a plain number crosses the boundary more cheaply than an optional one).
export function numberField(value, key) {
  const field = value[key];
  return typeof field === 'number' ? field : NaN;
}

// A lone surrogate, which has no UTF-8 form (String.prototype.isWellFormed is Node 20+).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// Whether a string argument has a UTF-8 form (src/wasm/options.rs, `required_string`).
export function isWellFormed(text) {
  return typeof text.isWellFormed === 'function' ? text.isWellFormed() : !LONE_SURROGATE.test(text);
}

// Gives a call's result its trace id as a non-enumerable, read-only `traceId`
// (src/wasm/plain.rs, `attach`); a frozen result is left as it is.
export function attachTrace(value, traceId) {
  if (Object.isExtensible(value)) Object.defineProperty(value, 'traceId', { value: traceId });
}

// UTF-8 bytes as text, a malformed sequence as U+FFFD (src/wasm/js_json.rs, `text_prefix`).
export function decodeLossy(bytes) {
  return new TextDecoder().decode(bytes);
}

export function snapshotInfo(snapshotId, namespace, sandboxId, baseImage, status, snapshotType, error, snapshotUri,
  snapshotFormatVersion, sizeBytes, rootfsDiskBytes, createdAtMs) {
  return {
    snapshotId,
    namespace,
    sandboxId,
    baseImage,
    status,
    snapshotType,
    error,
    snapshotUri,
    snapshotFormatVersion,
    sizeBytes,
    rootfsDiskBytes,
    createdAt: createdAtMs === undefined ? undefined : new Date(createdAtMs),
  };
}
