//! The options of the process, stream and lifecycle calls, declared like those of `options`
//! (every field a [`Raw`], an unknown key a `TypeError` listing the accepted ones), and the
//! readers of the arguments they share: a process (`pidOrName`) and a `user`.

use js_sys::{Array, Object, Reflect};
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};

use tensorlake_snapshots_core::args::{self, ArgError};
use tensorlake_snapshots_core::json_out;

use crate::wasm::options::Raw;

/// Declares an options struct whose fields are the accepted keys (camelCase in JS).
macro_rules! options {
    ($(#[$doc:meta])* $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", deny_unknown_fields, default)]
        #[allow(missing_docs)] // each field is the option of the same name
        pub struct $name {
            $(pub $field: Raw,)*
        }
    };
}

options! {
    /// `sandbox.startProcess(command, options)`.
    StartProcessOptions { args, env, working_dir, stdin_mode, user, name, signal }
}

options! {
    /// `sandbox.suspend(options)`, `sandbox.resume(options)` and the client's.
    SuspendResumeOptions { wait, timeout, poll_interval, signal }
}

options! {
    /// `sandbox.update(options)` and `client.update(sandboxId, options)`.
    UpdateOptions { name, exposed_ports, allow_unauthenticated_access, signal }
}

options! {
    /// `sandbox.checkpoint(options)`.
    CheckpointOptions { checkpoint_type, wait, timeout, poll_interval, wait_until, signal }
}

/// The longest process name accepted (the server's limit is the same order; this only keeps a
/// huge string out of wasm memory).
const MAX_NAME: usize = 1024;

/// A process argument: a PID (a positive integer, or a string of digits) or a name.
pub fn process_arg(value: &JsValue) -> Result<String, ArgError> {
    const PARAM: &str = "pidOrName";
    if let Some(n) = value.as_f64() {
        if n.fract() != 0.0 || !(1.0..=4_294_967_295.0).contains(&n) {
            return Err(ArgError::range_error(PARAM, "must be a positive integer PID or a process name"));
        }
        return Ok(json_out::number(n));
    }
    let text = value.dyn_ref::<js_sys::JsString>().ok_or_else(|| ArgError::type_error(PARAM, "must be a PID (number) or a process name (string)"))?;
    if text.length() == 0 || text.length() as usize > MAX_NAME {
        return Err(ArgError::type_error(PARAM, "must be a non-empty string of at most 1024 characters"));
    }
    args::id(PARAM, &crate::wasm::options::required_string(value, PARAM)?)
}

/// `user`: `"root"`, `"1000"`, `"1000:100"`, a name, or `{ uid | name, gid? }`, as JSON for the
/// request body.
pub fn user_arg(raw: &Raw) -> Result<Option<String>, ArgError> {
    let Some(value) = raw.get() else { return Ok(None) };
    let bad = || ArgError::type_error("user", "must be a string (\"root\", \"1000:100\", a name) or { uid | name, gid? }");
    if let Some(text) = value.as_string() {
        if text.is_empty() {
            return Err(bad());
        }
        return Ok(Some(json_out::string(&text)));
    }
    if !value.is_object() || Array::is_array(&value) {
        return Err(bad());
    }
    let object: &Object = value.unchecked_ref();
    let field = |key: &str| Reflect::get(object, &key.into()).ok().filter(|v| !v.is_undefined());
    let id = |v: JsValue, key: &str| -> Result<String, ArgError> {
        let n = v.as_f64().ok_or_else(bad)?;
        if n.fract() != 0.0 || !(0.0..=4_294_967_294.0).contains(&n) {
            return Err(ArgError::range_error(&format!("user.{key}"), "must be an integer id"));
        }
        Ok(json_out::number(n))
    };
    let mut out = json_out::Object::new();
    match (field("uid"), field("name")) {
        (Some(uid), None) => out = out.raw("uid", Some(id(uid, "uid")?)),
        (None, Some(name)) => out = out.str("name", Some(&name.as_string().filter(|n| !n.is_empty()).ok_or_else(bad)?)),
        _ => return Err(bad()),
    }
    if let Some(gid) = field("gid") {
        out = out.raw("gid", Some(id(gid, "gid")?));
    }
    Ok(Some(out.finish()))
}

/// A `wait`/`timeout`/`pollInterval` triple, in milliseconds: waiting is the default, for 300 s,
/// polling every second (the official SDKs' values).
pub fn wait_ms(wait: &Raw, timeout: &Raw, poll_interval: &Raw) -> Result<Option<(f64, f64)>, ArgError> {
    let timeout = args::seconds("timeout", timeout.number("timeout")?.unwrap_or(300.0))?;
    let poll = args::poll_interval("pollInterval", poll_interval.number("pollInterval")?.unwrap_or(1.0))?;
    Ok(wait.boolean("wait")?.unwrap_or(true).then_some((timeout * 1000.0, poll * 1000.0)))
}
