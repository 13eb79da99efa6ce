//! Core errors as JS errors: the classes of `js/errors.js`, `TypeError`/`RangeError` for bad
//! arguments, and the caller's own `signal.reason` for aborts.

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use web_sys::{AbortSignal, DomException};

use tensorlake_snapshots_core::args::ArgError;
use tensorlake_snapshots_core::error::{Error, NotFound};
use tensorlake_snapshots_core::models::SnapshotRecord;
use crate::wasm::js_platform::{JsHost, Shared};
use crate::wasm::js_json::JsJson;
use crate::wasm::to_js;

#[wasm_bindgen(module = "/js/errors.js")]
extern "C" {
    #[wasm_bindgen(js_name = createError)]
    fn create_error(class_name: &str, message: &str, fields: &Object) -> JsValue;
}

/// A JS error value as text, for messages: `Name: message`, or the value's string form.
pub fn describe(e: &JsValue) -> String {
    let field = |name: &str| Reflect::get(e, &name.into()).ok().and_then(|v| v.as_string());
    match (field("name"), field("message")) {
        (Some(name), Some(message)) => format!("{name}: {message}"),
        (None, Some(message)) => message,
        _ => e.as_string().unwrap_or_else(|| "unknown error".to_string()),
    }
}

/// An argument error as a `TypeError` or `RangeError`.
pub fn arg_error(arg: &ArgError) -> JsValue {
    if arg.is_range {
        js_sys::RangeError::new(&arg.message).into()
    } else {
        js_sys::TypeError::new(&arg.message).into()
    }
}

/// A `SandboxError` that is not about any request (configuration problems).
pub fn sandbox_error(message: &str, code: &str) -> JsValue {
    let fields = Object::new();
    set(&fields, "code", &code.into());
    create_error("SandboxError", message, &fields)
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    // Plain properties on a fresh object: cannot throw.
    let _ = Reflect::set(obj, &key.into(), value);
}

fn opt_str(obj: &Object, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        set(obj, key, &v.into());
    }
}

/// The abort reason to reject with: the caller's `signal.reason`, or a standard `AbortError`.
pub fn abort_reason(signal: Option<&AbortSignal>) -> JsValue {
    if let Some(signal) = signal {
        let reason = signal.reason();
        if !reason.is_undefined() {
            return reason;
        }
    }
    DomException::new_with_message_and_name("The operation was aborted", "AbortError")
        .map(JsValue::from)
        .unwrap_or_else(|_| js_sys::Error::new("The operation was aborted").into())
}

/// A snapshot record with every text field redacted: a failed snapshot's `error` is the server's
/// own words, and a server may echo a credential in any of them.
fn redact_record(mut record: SnapshotRecord<JsJson>, shared: &Shared) -> SnapshotRecord<JsJson> {
    let redact = |field: &mut Option<JsJson>| {
        if let Some(text) = field.as_ref().and_then(|v| v.as_string()) {
            *field = Some(JsJson(shared.redact(text).into()));
        }
    };
    for field in [
        &mut record.namespace,
        &mut record.sandbox_id,
        &mut record.base_image,
        &mut record.snapshot_type,
        &mut record.error,
        &mut record.snapshot_uri,
        &mut record.snapshot_format_version,
    ] {
        redact(field);
    }
    record
}

/// Converts a core error into the JS value the call rejects with. Every string built from a
/// response or from the caller's input passes through `shared.redact` here, at the one exit, so
/// no path can forget it.
pub fn to_js(err: Error<JsHost>, signal: Option<&AbortSignal>, shared: &Shared) -> JsValue {
    let class = err.class_name();
    let message = shared.redact(err.message());
    let fields = Object::new();
    opt_str(&fields, "traceId", err.trace_id());
    match err {
        Error::Arg(arg) => return arg_error(&arg),
        Error::Aborted => return abort_reason(signal),
        Error::Callback(thrown) => return thrown,
        Error::Api(api) => {
            set(&fields, "statusCode", &JsValue::from(api.status));
            set(&fields, "responseMessage", &shared.redact(api.response_message).into());
            opt_str(&fields, "code", api.code.map(|c| shared.redact(c)).as_deref());
            set(&fields, "retryable", &api.retryable.into());
            if let Some(ms) = api.retry_after_ms {
                set(&fields, "retryAfter", &JsValue::from_f64(ms / 1000.0));
            }
            match &api.not_found {
                Some(NotFound::Sandbox(id)) => set(&fields, "sandboxId", &id.as_str().into()),
                Some(NotFound::Snapshot(id)) => set(&fields, "snapshotId", &id.as_str().into()),
                None => {}
            }
            set(&fields, "outcomeUnknown", &api.outcome_unknown.is_some().into());
        }
        Error::Connection(conn) => {
            if let Some(cause) = conn.cause {
                set(&fields, "cause", &cause);
            }
            set(&fields, "timedOut", &conn.timed_out.into());
            set(&fields, "outcomeUnknown", &conn.outcome_unknown.is_some().into());
        }
        Error::InvalidResponse { status, .. } => {
            set(&fields, "code", &"INVALID_RESPONSE".into());
            set(&fields, "statusCode", &JsValue::from(status));
        }
        Error::SnapshotFailed { snapshot, snapshot_id, server_message, .. } => {
            set(&fields, "snapshotId", &snapshot_id.as_str().into());
            set(&fields, "snapshot", &to_js::snapshot(redact_record(*snapshot, shared)));
            opt_str(&fields, "responseMessage", server_message.map(|m| shared.redact(m)).as_deref());
        }
        Error::WaitTimeout { snapshot_id, wait_until, last_status, timeout_s, .. } => {
            set(&fields, "snapshotId", &snapshot_id.as_str().into());
            set(&fields, "waitUntil", &wait_until.into());
            opt_str(&fields, "lastStatus", last_status.map(|s| shared.redact(s)).as_deref());
            set(&fields, "timeout", &JsValue::from_f64(timeout_s));
        }
        Error::Sandbox { code, sandbox_id, .. } => {
            set(&fields, "code", &code.into());
            opt_str(&fields, "sandboxId", sandbox_id.as_deref());
        }
    }
    create_error(class, &message, &fields)
}
