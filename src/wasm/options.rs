//! The options objects callers pass, as `serde`-derived structs.
//!
//! Each call has its own struct, whose fields are the keys it accepts: `deny_unknown_fields` makes
//! a misspelled key (`pollIntervall`, `memoryMB`) a `TypeError` that names it and lists the
//! accepted ones, before any request. A field holds the caller's value as it is ([`Raw`]), and is
//! then read with a `TypeError` naming the option when it has the wrong type (the messages the
//! tests pin, which serde's own "invalid type" errors would not give), and range-checked by the
//! core (`args`). Functions and `AbortSignal`s cannot be deserialized into Rust data at all, so
//! keeping each value as a `JsValue` is also what lets one struct hold `onStatus` and `signal`.

use js_sys::{Array, Function, Reflect, Uint8Array};
use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::AbortSignal;

use tensorlake_snapshots_core::args::ArgError;

/// One option's value as the caller passed it; `undefined` when absent.
#[derive(Default)]
pub struct Raw(JsValue);

thread_local! {
    /// The value [`OptionsDeserializer`] is handing to [`Raw`]: serde's data model has no slot
    /// for a JS value, so it is passed beside the `visit_unit` that stands for it.
    static HANDOFF: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

impl<'de> Deserialize<'de> for Raw {
    /// Takes the value [`OptionsDeserializer`] put beside the call, without asking the
    /// deserializer for anything: it cannot fail, so the derived code keeps no error path (and no
    /// drop of the fields read so far) per field, which measured 1.3 KB gzipped over all the
    /// option structs. `Raw` is read by that deserializer only.
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Raw, D::Error> {
        Ok(Raw(take_handoff()))
    }
}

// Out of line, like `Values::advance`: inlined, these were repeated for every field of every
// option struct.
#[inline(never)]
fn take_handoff() -> JsValue {
    HANDOFF.with(|slot| slot.borrow_mut().take()).unwrap_or_default()
}

/// A serde deserializer over a JS object's own enumerable string keys, whose values are [`Raw`].
///
/// Not `serde_wasm_bindgen::from_value`: measured in this crate, reading the option structs with
/// it (each `Raw` through `serde_wasm_bindgen::preserve`) made the wasm 91,976 bytes gzipped
/// (from 66,998), and again 93,643 (from 78,006) on 2026-12-02, over the 80 KB budget: its
/// deserializer can hand a number to the derived visitors, whose default `visit_f64` formats the
/// float for serde's "invalid type" error, which links core's float printer (about 15 KB of
/// code), and each struct gets its own map visitor over it. The option structs only need "which
/// keys, and each value as it is", which this does in a few hundred bytes; the derives and their
/// errors are serde's.
struct OptionsDeserializer(Vec<(String, JsValue)>);

/// An options error: serde's message, e.g. "unknown field `memoryMB`, expected one of …".
#[derive(Debug)]
struct OptionsError(String);

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionsError {}

impl de::Error for OptionsError {
    fn custom<T: fmt::Display>(msg: T) -> OptionsError {
        OptionsError(msg.to_string())
    }
}

impl<'de> Deserializer<'de> for OptionsDeserializer {
    type Error = OptionsError;
    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, OptionsError> {
        Err(de::Error::custom("options are read into structs only"))
    }
    /// Every key is checked against the struct's fields (the list the derive passes), and the
    /// values are handed over in field order, as a sequence. The derive's map path (matching
    /// each key against every field name, per struct) would give the same result; measured, it
    /// made these structs' code about 2 KB larger gzipped.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, OptionsError> {
        visitor.visit_seq(Values(in_field_order(self.0, fields)?.into_iter()))
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The entries' values in the order of `fields` (`undefined` for an absent one), or the error
/// of `deny_unknown_fields` for a key that is not a field: one function for every struct.
fn in_field_order(entries: Vec<(String, JsValue)>, fields: &'static [&'static str]) -> Result<Vec<JsValue>, OptionsError> {
    let mut values = vec![JsValue::UNDEFINED; fields.len()];
    for (key, value) in entries {
        match fields.iter().position(|field| *field == key).and_then(|at| values.get_mut(at)) {
            Some(slot) => *slot = value,
            None => return Err(de::Error::unknown_field(&key, fields)),
        }
    }
    Ok(values)
}

struct Values(std::vec::IntoIter<JsValue>);

impl<'de> SeqAccess<'de> for Values {
    type Error = OptionsError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, OptionsError> {
        if !self.advance() {
            return Ok(None);
        }
        seed.deserialize(de::value::UnitDeserializer::new()).map(Some)
    }
}

impl Values {
    /// Puts the next value beside the call; false when there is none.
    #[inline(never)]
    fn advance(&mut self) -> bool {
        let next = self.0.next();
        let more = next.is_some();
        HANDOFF.with(|slot| *slot.borrow_mut() = next);
        more
    }
}

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

/// Parses an options argument (`param`, for errors): `undefined` and `null` read as all defaults,
/// anything but an object is a `TypeError`, and so is a key `T` does not have.
pub fn parse<T: DeserializeOwned + Default>(value: &JsValue, param: &str) -> Result<T, ArgError> {
    if value.is_null_or_undefined() {
        return Ok(T::default());
    }
    if !value.is_object() {
        return Err(ArgError::type_error(param, "must be an options object"));
    }
    // A getter or a Proxy trap may throw while the keys are read: that is a bad options object,
    // rejected like any other, not an exception escaping a method that promises to reject.
    let entries = object_entries(value)
        .map_err(|e| ArgError::type_error(param, &format!("could not be read ({})", crate::wasm::errors::describe(&e))))?
        .iter()
        .filter_map(|pair| {
            let pair: Array = pair.unchecked_into();
            Some((pair.get(0).as_string()?, pair.get(1)))
        })
        .collect();
    // A field's own value cannot fail here (every field is a `Raw`): the one error is a key the
    // struct does not have, named with the accepted ones.
    T::deserialize(OptionsDeserializer(entries))
        .map_err(|e| ArgError::type_error(param, &e.0.replacen("unknown field", "unknown option", 1)))
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

    /// A string option.
    pub fn string(&self, key: &str) -> Result<Option<String>, ArgError> {
        self.get().map(|v| v.as_string().ok_or_else(|| ArgError::type_error(key, "must be a string"))).transpose()
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
        object_entries(&value)
            .map_err(|_| bad())?
            .iter()
            .map(|pair| {
                let pair: Array = pair.unchecked_into();
                Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)
    }
}

/// Declares an options struct: its fields are the accepted keys (camelCase in JS). Each field has
/// its own `#[serde(default)]` rather than the struct one: with the struct's, the derived code
/// builds a whole default struct and moves fields out of it, which measured 1,756 bytes gzipped
/// more over these ten structs (77,252 against 75,496).
macro_rules! options {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $($(#[$fdoc])* #[serde(default)] pub $field: Raw,)*
        }
    };
}

options! {
    /// `new SandboxClient(options)` and `SandboxClient.forLocalhost(options)`.
    ClientOptionsJs {
        /// `apiUrl`.
        api_url,
        /// `apiKey`.
        api_key,
        /// `namespace`.
        namespace,
        /// `organizationId`.
        organization_id,
        /// `projectId`.
        project_id,
        /// `requestTimeout`, seconds.
        request_timeout,
        /// `maxRetries`.
        max_retries,
        /// `maxResponseBytes`.
        max_response_bytes,
        /// `tokenProvider`.
        token_provider,
        /// `fetch`.
        fetch,
        /// `httpAgent` (Node).
        http_agent,
        /// `dangerouslyAllowBrowser`.
        dangerously_allow_browser,
    }
}

options! {
    /// Calls whose only option is `signal`.
    SignalOnly {
        /// `signal`.
        signal,
    }
}

options! {
    /// `snapshot(sandboxId, options)`.
    SnapshotOptions {
        /// `snapshotType`.
        snapshot_type,
        /// `signal`.
        signal,
    }
}

options! {
    /// `listSnapshots(options)`.
    ListSnapshotsOptions {
        /// `sandboxId`.
        sandbox_id,
        /// `signal`.
        signal,
    }
}

options! {
    /// `waitForSnapshot(snapshotId, options)` and `watchSnapshot(snapshotId, options)`.
    WaitOptionsJs {
        /// `timeout`, seconds.
        timeout,
        /// `pollInterval`, seconds.
        poll_interval,
        /// `waitUntil`.
        wait_until,
        /// `onStatus`.
        on_status,
        /// `signal`.
        signal,
    }
}

options! {
    /// `snapshotAndWait(sandboxId, options)`: the wait's options and `snapshotType`.
    SnapshotAndWaitOptions {
        /// `snapshotType`.
        snapshot_type,
        /// `timeout`, seconds.
        timeout,
        /// `pollInterval`, seconds.
        poll_interval,
        /// `waitUntil`.
        wait_until,
        /// `onStatus`.
        on_status,
        /// `signal`.
        signal,
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
        image,
        /// `cpus`.
        cpus,
        /// `memoryMb`.
        memory_mb,
        /// `diskMb`.
        disk_mb,
        /// `timeoutSecs`.
        timeout_secs,
        /// `entrypoint`.
        entrypoint,
        /// `snapshotId`.
        snapshot_id,
        /// `name`.
        name,
        /// `allowInternetAccess`.
        allow_internet_access,
        /// `allowOut`.
        allow_out,
        /// `denyOut`.
        deny_out,
        /// `signal`.
        signal,
    }
}

options! {
    /// `createAndConnect(options)`: `createSandbox`'s and `startupTimeout`.
    CreateAndConnectOptions {
        /// `image`.
        image,
        /// `cpus`.
        cpus,
        /// `memoryMb`.
        memory_mb,
        /// `diskMb`.
        disk_mb,
        /// `timeoutSecs`.
        timeout_secs,
        /// `entrypoint`.
        entrypoint,
        /// `snapshotId`.
        snapshot_id,
        /// `name`.
        name,
        /// `allowInternetAccess`.
        allow_internet_access,
        /// `allowOut`.
        allow_out,
        /// `denyOut`.
        deny_out,
        /// `startupTimeout`, seconds.
        startup_timeout,
        /// `signal`.
        signal,
    }
}

options! {
    /// `sandbox.run(command, options)` and `sandbox.commands.run(command, options)`.
    RunOptions {
        /// `args`.
        args,
        /// `env`.
        env,
        /// `workingDir`.
        working_dir,
        /// `timeout`, seconds.
        timeout,
        /// `user`.
        user,
        /// `signal`.
        signal,
    }
}

/// A JS array of strings as a `Vec`, or `None` if it is anything else.
pub fn strings(value: &JsValue) -> Option<Vec<String>> {
    if !Array::is_array(value) {
        return None;
    }
    value.unchecked_ref::<Array>().iter().map(|v| v.as_string()).collect()
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
