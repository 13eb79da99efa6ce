//! The options objects callers pass, each read into a struct whose fields are the keys it accepts.
//!
//! A misspelled key (`pollIntervall`, `memoryMB`) is a `TypeError` that names it and lists the
//! accepted ones, before any request (the text serde's `deny_unknown_fields` gives, "unknown
//! option `x`, expected one of `a`, `b`"). A field holds the caller's value as it is ([`Raw`]),
//! and is then read with a `TypeError` naming the option when it has the wrong type, and
//! range-checked by the core (`args`). Functions and `AbortSignal`s are not data, so keeping each
//! value as a `JsValue` is also what lets one struct hold `onStatus` and `signal`.
//!
//! Not serde derives (which this module used until 2026-12-02): one non-generic loop over the
//! object's keys, driven by each struct's key table ([`Options::KEYS`]), does the same job. With
//! issue 12's calls the wasm was 90,279 bytes gzipped, over the 81,920-byte budget, and the derived
//! code (a `deserialize_struct` and visitor per struct, serde's error formatting) was the largest
//! piece that could go without dropping a feature; the measured saving is in Cargo.toml. Not
//! serde-wasm-bindgen either: measured again on 2026-12-02 against this module's 80,005 bytes
//! gzipped, one struct (`SignalOnly`) read with `serde_wasm_bindgen::from_value` made 99,289 and
//! all of them 102,638. Its deserializer reports a wrong type through serde's `Unexpected`, whose
//! `Display` prints floats and `{:?}`-escapes strings, which links core's float printer
//! (`flt2dec`: Grisu and Dragon) and Unicode printable tables whatever the structs hold.

use js_sys::{Array, Function, Reflect, Uint8Array};

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::AbortSignal;

use tensorlake_snapshots_core::args::ArgError;

/// One option's value as the caller passed it; `undefined` when absent.
#[derive(Default)]
pub struct Raw(JsValue);

#[wasm_bindgen]
extern "C" {
    /// `Object.entries`, catching what a getter or a Proxy trap throws (js_sys's does not).
    #[wasm_bindgen(js_namespace = Object, js_name = entries, catch)]
    fn object_entries(value: &JsValue) -> Result<Array, JsValue>;
}

#[wasm_bindgen(module = "/js/records.js")]
extern "C" {
    // One call, where js_sys's `is_valid_utf16` crosses into JS once per UTF-16 unit: every id
    // argument is checked, so that was a few dozen crossings per call.
    #[wasm_bindgen(js_name = isWellFormed)]
    fn is_well_formed(text: &js_sys::JsString) -> bool;
}

/// An options struct: its fields are the keys it accepts.
pub trait Options: Default {
    /// Sets the fields from an options object, through [`fill`] with the struct's key table.
    fn read(&mut self, value: &JsValue, param: &str) -> Result<(), ArgError>;
}

/// Parses an options argument (`param`, for errors): `undefined` and `null` read as all defaults,
/// anything but an object is a `TypeError`, and so is a key `T` does not have.
pub fn parse<T: Options>(value: &JsValue, param: &str) -> Result<T, ArgError> {
    if value.is_null_or_undefined() {
        return Ok(T::default());
    }
    let mut options = T::default();
    options.read(value, param)?;
    Ok(options)
}

/// Puts each of the object's values in the field of `out` at its key's place in `keys`: one
/// function for every options reader. `undefined` and `null` leave `out` as it is; anything but an object, or a key
/// not in `keys`, is a `TypeError` naming `param`.
pub fn fill(value: &JsValue, param: &str, keys: &[&str], out: &mut [&mut Raw]) -> Result<(), ArgError> {
    if value.is_null_or_undefined() {
        return Ok(());
    }
    if !value.is_object() {
        return Err(ArgError::type_error(param, "must be an options object"));
    }
    // A getter or a Proxy trap may throw while the keys are read: that is a bad options object,
    // rejected like any other, not an exception escaping a method that promises to reject.
    let pairs = object_entries(value).map_err(|e| {
        let mut why = String::from("could not be read (");
        why.push_str(&crate::wasm::errors::describe(&e));
        why.push(')');
        ArgError::type_error(param, &why)
    })?;
    for pair in pairs.iter() {
        let pair: Array = pair.unchecked_into();
        let key = pair.get(0).as_string().unwrap_or_default();
        match keys.iter().position(|k| *k == key).and_then(|at| out.get_mut(at)) {
            Some(slot) => **slot = Raw(pair.get(1)),
            None => return Err(ArgError::type_error(param, &unknown_option(&key, keys))),
        }
    }
    Ok(())
}

/// "unknown option `x`, expected one of `a`, `b`": serde's `unknown_field` wording, which these
/// messages have had since the options were serde-derived.
fn unknown_option(key: &str, keys: &[&str]) -> String {
    let mut why = String::from("unknown option `");
    why.push_str(key);
    why.push_str(match keys.len() {
        0 => "`, there are no options",
        1 => "`, expected ",
        2 => "`, expected ",
        _ => "`, expected one of ",
    });
    for (i, k) in keys.iter().enumerate() {
        why.push_str(match i {
            0 => "`",
            _ if keys.len() == 2 => " or `",
            _ => ", `",
        });
        why.push_str(k);
        why.push('`');
    }
    why
}

impl Raw {
    /// Wraps a value read by another options reader (`process_options::read`).
    pub fn new(value: JsValue) -> Raw {
        Raw(value)
    }

    /// The value, `None` when absent, `undefined` or `null`.
    pub fn get(&self) -> Option<JsValue> {
        Some(self.0.clone()).filter(|v| !v.is_null_or_undefined())
    }

    /// A string option, refused like a required one if it is not well-formed UTF-16.
    pub fn string(&self, key: &str) -> Result<Option<String>, ArgError> {
        self.get().map(|v| required_string(&v, key)).transpose()
    }

    /// A number option.
    pub fn number(&self, key: &str) -> Result<Option<f64>, ArgError> {
        self.get().map(|v| v.as_f64().ok_or_else(|| ArgError::type_error(key, "must be a number"))).transpose()
    }

    /// A boolean option.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ArgError> {
        self.get().map(|v| v.as_bool().ok_or_else(|| ArgError::type_error(key, "must be a boolean"))).transpose()
    }

    /// A function option.
    pub fn function(&self, key: &str) -> Result<Option<Function>, ArgError> {
        self.get()
            .map(|v| v.dyn_into::<Function>().map_err(|_| ArgError::type_error(key, "must be a function")))
            .transpose()
    }

    /// `signal`: anything shaped like an `AbortSignal` (a boolean `aborted` and
    /// `addEventListener`), so signals from other realms and polyfills work too.
    pub fn signal(&self) -> Result<Option<AbortSignal>, ArgError> {
        let Some(value) = self.get() else { return Ok(None) };
        let aborted = Reflect::get(&value, &"aborted".into()).ok().and_then(|v| v.as_bool());
        let listens = Reflect::get(&value, &"addEventListener".into()).is_ok_and(|v| v.is_function());
        if aborted.is_none() || !listens {
            return Err(ArgError::type_error("signal", "must be an AbortSignal"));
        }
        Ok(Some(value.unchecked_into()))
    }

    /// An array of strings.
    pub fn string_array(&self, key: &str) -> Result<Option<Vec<String>>, ArgError> {
        let Some(value) = self.get() else { return Ok(None) };
        strings(&value).map(Some).ok_or_else(|| ArgError::type_error(key, "must be an array of strings"))
    }

    /// A `{ name: value }` object of strings, in insertion order.
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, ArgError> {
        let Some(value) = self.get() else { return Ok(Vec::new()) };
        let bad = || ArgError::type_error(key, "must be an object mapping names to strings");
        if !value.is_object() || Array::is_array(&value) {
            return Err(bad());
        }
        // A loop, not `collect` into an `Option`: its iterator adapters cost more wasm.
        let mut out = Vec::new();
        for pair in object_entries(&value).map_err(|_| bad())?.iter() {
            let pair: Array = pair.unchecked_into();
            match (pair.get(0).as_string(), pair.get(1).as_string()) {
                (Some(name), Some(text)) => out.push((name, text)),
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }
}

/// Declares an options struct: its fields are the accepted keys, each with its camelCase name.
macro_rules! options {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident = $key:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Default)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: Raw,)*
        }

        impl Options for $name {
            // The fields by reference, not a list of values moved into a new struct: that
            // measured 2.3 KB of wasm over these structs, this a few bytes per field.
            fn read(&mut self, value: &JsValue, param: &str) -> Result<(), ArgError> {
                fill(value, param, &[$($key),*], &mut [$(&mut self.$field),*])
            }
        }
    };
}

options! {
    /// `new SandboxClient(options)` and `SandboxClient.forLocalhost(options)`.
    ClientOptionsJs {
        /// `apiUrl`.
        api_url = "apiUrl",
        /// `apiKey`.
        api_key = "apiKey",
        /// `namespace`.
        namespace = "namespace",
        /// `organizationId`.
        organization_id = "organizationId",
        /// `projectId`.
        project_id = "projectId",
        /// `requestTimeout`, seconds.
        request_timeout = "requestTimeout",
        /// `maxRetries`.
        max_retries = "maxRetries",
        /// `maxResponseBytes`.
        max_response_bytes = "maxResponseBytes",
        /// `tokenProvider`.
        token_provider = "tokenProvider",
        /// `fetch`.
        fetch = "fetch",
        /// `httpAgent` (Node).
        http_agent = "httpAgent",
        /// `dangerouslyAllowBrowser`.
        dangerously_allow_browser = "dangerouslyAllowBrowser",
    }
}

options! {
    /// Calls whose only option is `signal`.
    SignalOnly {
        /// `signal`.
        signal = "signal",
    }
}

options! {
    /// `snapshot(sandboxId, options)`.
    SnapshotOptions {
        /// `snapshotType`.
        snapshot_type = "snapshotType",
        /// `signal`.
        signal = "signal",
    }
}

options! {
    /// `listSnapshots(options)`.
    ListSnapshotsOptions {
        /// `sandboxId`.
        sandbox_id = "sandboxId",
        /// `signal`.
        signal = "signal",
    }
}

options! {
    /// `waitForSnapshot(snapshotId, options)` and `watchSnapshot(snapshotId, options)`.
    WaitOptionsJs {
        /// `timeout`, seconds.
        timeout = "timeout",
        /// `pollInterval`, seconds.
        poll_interval = "pollInterval",
        /// `waitUntil`.
        wait_until = "waitUntil",
        /// `onStatus`.
        on_status = "onStatus",
        /// `signal`.
        signal = "signal",
    }
}

options! {
    /// `snapshotAndWait(sandboxId, options)`: the wait's options and `snapshotType`.
    SnapshotAndWaitOptions {
        /// `snapshotType`.
        snapshot_type = "snapshotType",
        /// `timeout`, seconds.
        timeout = "timeout",
        /// `pollInterval`, seconds.
        poll_interval = "pollInterval",
        /// `waitUntil`.
        wait_until = "waitUntil",
        /// `onStatus`.
        on_status = "onStatus",
        /// `signal`.
        signal = "signal",
    }
}

impl SnapshotAndWaitOptions {
    /// `snapshotType`, and the rest as a wait's options.
    pub fn split(self) -> (Raw, WaitOptionsJs) {
        let SnapshotAndWaitOptions { snapshot_type, timeout, poll_interval, wait_until, on_status, signal } = self;
        (snapshot_type, WaitOptionsJs { timeout, poll_interval, wait_until, on_status, signal })
    }
}

options! {
    /// `createSandbox(options)`.
    CreateSandboxOptions {
        /// `image`.
        image = "image",
        /// `cpus`.
        cpus = "cpus",
        /// `memoryMb`.
        memory_mb = "memoryMb",
        /// `diskMb`.
        disk_mb = "diskMb",
        /// `timeoutSecs`.
        timeout_secs = "timeoutSecs",
        /// `entrypoint`.
        entrypoint = "entrypoint",
        /// `snapshotId`.
        snapshot_id = "snapshotId",
        /// `name`.
        name = "name",
        /// `allowInternetAccess`.
        allow_internet_access = "allowInternetAccess",
        /// `allowOut`.
        allow_out = "allowOut",
        /// `denyOut`.
        deny_out = "denyOut",
        /// `signal`.
        signal = "signal",
    }
}

options! {
    /// `createAndConnect(options)`: `createSandbox`'s and `startupTimeout`.
    CreateAndConnectOptions {
        /// `image`.
        image = "image",
        /// `cpus`.
        cpus = "cpus",
        /// `memoryMb`.
        memory_mb = "memoryMb",
        /// `diskMb`.
        disk_mb = "diskMb",
        /// `timeoutSecs`.
        timeout_secs = "timeoutSecs",
        /// `entrypoint`.
        entrypoint = "entrypoint",
        /// `snapshotId`.
        snapshot_id = "snapshotId",
        /// `name`.
        name = "name",
        /// `allowInternetAccess`.
        allow_internet_access = "allowInternetAccess",
        /// `allowOut`.
        allow_out = "allowOut",
        /// `denyOut`.
        deny_out = "denyOut",
        /// `startupTimeout`, seconds.
        startup_timeout = "startupTimeout",
        /// `signal`.
        signal = "signal",
    }
}

options! {
    /// `sandbox.run(command, options)` and `sandbox.commands.run(command, options)`.
    RunOptions {
        /// `args`.
        args = "args",
        /// `env`.
        env = "env",
        /// `workingDir`.
        working_dir = "workingDir",
        /// `timeout`, seconds.
        timeout = "timeout",
        /// `user`.
        user = "user",
        /// `signal`.
        signal = "signal",
    }
}

/// A JS array of strings as a `Vec`, or `None` if it is anything else.
pub fn strings(value: &JsValue) -> Option<Vec<String>> {
    if !Array::is_array(value) {
        return None;
    }
    // A loop, not `collect` into an `Option`: its iterator adapters cost more wasm.
    let mut out = Vec::new();
    for item in value.unchecked_ref::<Array>().iter() {
        out.push(item.as_string()?);
    }
    Some(out)
}

/// A required string argument.
pub fn required_string(value: &JsValue, param: &str) -> Result<String, ArgError> {
    let text = value.dyn_ref::<js_sys::JsString>().ok_or_else(|| ArgError::type_error(param, "must be a string"))?;
    // A lone surrogate has no UTF-8 form: the copy would turn it into U+FFFD, and the call would
    // name another resource than the caller's.
    if !is_well_formed(text) {
        return Err(ArgError::type_error(param, "must not contain unpaired surrogates (invalid UTF-16)"));
    }
    Ok(String::from(text))
}

/// File contents: a string (written as UTF-8), a `Uint8Array` (or any typed-array view), or an
/// `ArrayBuffer`.
pub fn bytes(value: &JsValue, param: &str) -> Result<Vec<u8>, ArgError> {
    if let Some(text) = value.as_string() {
        return Ok(text.into_bytes());
    }
    if value.is_instance_of::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(value).to_vec());
    }
    if js_sys::ArrayBuffer::is_view(value) {
        let view: &js_sys::Object = value.unchecked_ref();
        let buffer = Reflect::get(view, &"buffer".into()).map_err(|_| ArgError::type_error(param, "unreadable view"))?;
        let offset = Reflect::get(view, &"byteOffset".into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let length = Reflect::get(view, &"byteLength".into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
        return Ok(Uint8Array::new_with_byte_offset_and_length(&buffer, offset as u32, length as u32).to_vec());
    }
    Err(ArgError::type_error(param, "must be a string, a Uint8Array or an ArrayBuffer"))
}

impl CreateAndConnectOptions {
    /// `startupTimeout`, and the rest as `createSandbox`'s options.
    pub fn split(self) -> (Raw, CreateSandboxOptions) {
        let CreateAndConnectOptions {
            image, cpus, memory_mb, disk_mb, timeout_secs, entrypoint, snapshot_id, name, allow_internet_access, allow_out,
            deny_out, startup_timeout, signal,
        } = self;
        let create = CreateSandboxOptions {
            image, cpus, memory_mb, disk_mb, timeout_secs, entrypoint, snapshot_id, name, allow_internet_access, allow_out,
            deny_out, signal,
        };
        (startup_timeout, create)
    }
}
