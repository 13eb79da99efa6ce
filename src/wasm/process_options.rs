//! The options of the process, stream and lifecycle calls, and the readers of the arguments they
//! share: a process (`pidOrName`) and a `user`.
//!
//! Options are read by [`read`] into an array, one value per accepted key, through the loop every
//! options reader shares (`options::fill`: an unknown key is a `TypeError` that names it and lists
//! the accepted ones).

use js_sys::{Array, JsString};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use tensorlake_snapshots_core::args::{self, ArgError};
use tensorlake_snapshots_core::json_out;

use crate::wasm::options::Raw;

#[wasm_bindgen]
extern "C" {
    /// `JSON.stringify` of a `user` object (plain data the caller built).
    #[wasm_bindgen(js_namespace = JSON, js_name = stringify, catch)]
    fn stringify(value: &JsValue) -> Result<JsValue, JsValue>;
}

/// `startProcess(command, options)`.
pub const START_PROCESS: [&str; 7] = [
    "args",
    "env",
    "workingDir",
    "stdinMode",
    "user",
    "name",
    "signal",
];
/// `suspend(options)` and `resume(options)`.
pub const SUSPEND_RESUME: [&str; 4] = ["wait", "timeout", "pollInterval", "signal"];
/// `update(options)`.
pub const UPDATE: [&str; 4] = [
    "name",
    "exposedPorts",
    "allowUnauthenticatedAccess",
    "signal",
];
/// `checkpoint(options)`.
pub const CHECKPOINT: [&str; 6] = [
    "checkpointType",
    "wait",
    "timeout",
    "pollInterval",
    "waitUntil",
    "signal",
];

/// Reads an options object whose accepted keys are `keys`: their values in that order, absent
/// ones `undefined`. `undefined` and `null` read as all defaults; anything but an object, or a
/// key not in `keys`, is a `TypeError`.
pub fn read<const N: usize>(value: &JsValue, keys: &[&str; N]) -> Result<[Raw; N], ArgError> {
    let mut out: [Raw; N] = std::array::from_fn(|_| Raw::default());
    crate::wasm::options::fill(value, "options", keys, &mut out.each_mut())?;
    Ok(out)
}

/// A process argument: a PID (a positive integer, or a string of digits) or a name.
pub fn process_arg(value: &JsValue) -> Result<String, ArgError> {
    const PARAM: &str = "pidOrName";
    if let Some(n) = value.as_f64() {
        if n.fract() != 0.0 || !(1.0..=4_294_967_295.0).contains(&n) {
            return Err(ArgError::range_error(
                PARAM,
                "must be a positive integer PID or a process name",
            ));
        }
        return Ok(json_out::number(n));
    }
    match value.dyn_ref::<JsString>() {
        Some(text) if text.length() as usize <= args::MAX_ID_BYTES => {
            args::id(PARAM, &crate::wasm::options::required_string(value, PARAM)?)
        }
        _ => Err(ArgError::type_error(
            PARAM,
            "must be a PID (number) or a process name (string of at most 1024 characters)",
        )),
    }
}

/// `user`: `"root"`, `"1000"`, `"1000:100"`, a name, or `{ uid | name, gid? }`, as JSON for the
/// request body. Which users exist is the sandbox's to say (a 400 naming `user`).
pub fn user_arg(raw: &Raw) -> Result<Option<String>, ArgError> {
    let Some(value) = raw.get() else {
        return Ok(None);
    };
    let bad = || {
        ArgError::type_error(
            "user",
            "must be a non-empty string (\"root\", \"1000:100\", a name) or { uid | name, gid? }",
        )
    };
    if let Some(text) = value.as_string() {
        return if text.is_empty() {
            Err(bad())
        } else {
            Ok(Some(json_out::string(&text)))
        };
    }
    if !value.is_object() || Array::is_array(&value) {
        return Err(bad());
    }
    stringify(&value)
        .ok()
        .and_then(|json| json.as_string())
        .filter(|json| json.starts_with('{'))
        .map(Some)
        .ok_or_else(bad)
}

/// A `wait`/`timeout`/`pollInterval` triple, in milliseconds: waiting is the default, for 300 s,
/// polling every second (the official SDKs' values).
pub fn wait_ms(
    wait: &Raw,
    timeout: &Raw,
    poll_interval: &Raw,
) -> Result<Option<(f64, f64)>, ArgError> {
    let timeout = args::seconds("timeout", timeout.number("timeout")?.unwrap_or(300.0))?;
    let poll = args::poll_interval(
        "pollInterval",
        poll_interval.number("pollInterval")?.unwrap_or(1.0),
    )?;
    Ok(wait
        .boolean("wait")?
        .unwrap_or(true)
        .then_some((timeout * 1000.0, poll * 1000.0)))
}
