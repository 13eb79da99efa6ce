//! Reading the options objects callers pass, with a `TypeError` naming the option when one has the
//! wrong type. Values are then range-checked by the core (`args`).

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::AbortSignal;

use tensorlake_snapshots_core::args::ArgError;

/// An options object (or `undefined`/`null`, which reads as empty).
pub struct Opts<'a> {
    value: &'a JsValue,
}

impl<'a> Opts<'a> {
    /// Accepts an object, `undefined` or `null`; `param` names the argument in errors.
    pub fn new(value: &'a JsValue, param: &str) -> Result<Opts<'a>, ArgError> {
        if !value.is_null_or_undefined() && !value.is_object() {
            return Err(ArgError::type_error(param, "must be an options object"));
        }
        Ok(Opts { value })
    }

    /// The raw value of `key`, `None` when absent, `undefined` or `null`.
    pub fn raw(&self, key: &str) -> Option<JsValue> {
        if self.value.is_null_or_undefined() {
            return None;
        }
        Reflect::get(self.value, &key.into()).ok().filter(|v| !v.is_null_or_undefined())
    }

    /// A string option.
    pub fn string(&self, key: &str) -> Result<Option<String>, ArgError> {
        self.raw(key).map(|v| v.as_string().ok_or_else(|| ArgError::type_error(key, "must be a string"))).transpose()
    }

    /// A number option.
    pub fn number(&self, key: &str) -> Result<Option<f64>, ArgError> {
        self.raw(key).map(|v| v.as_f64().ok_or_else(|| ArgError::type_error(key, "must be a number"))).transpose()
    }

    /// A boolean option.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ArgError> {
        self.raw(key).map(|v| v.as_bool().ok_or_else(|| ArgError::type_error(key, "must be a boolean"))).transpose()
    }

    /// A function option.
    pub fn function(&self, key: &str) -> Result<Option<Function>, ArgError> {
        self.raw(key)
            .map(|v| v.dyn_into::<Function>().map_err(|_| ArgError::type_error(key, "must be a function")))
            .transpose()
    }

    /// `signal`: anything shaped like an `AbortSignal` (a boolean `aborted` and
    /// `addEventListener`), so signals from other realms and polyfills work too.
    pub fn signal(&self) -> Result<Option<AbortSignal>, ArgError> {
        let Some(value) = self.raw("signal") else { return Ok(None) };
        let aborted = Reflect::get(&value, &"aborted".into()).ok().and_then(|v| v.as_bool());
        let listens = Reflect::get(&value, &"addEventListener".into()).is_ok_and(|v| v.is_function());
        if aborted.is_none() || !listens {
            return Err(ArgError::type_error("signal", "must be an AbortSignal"));
        }
        Ok(Some(value.unchecked_into()))
    }

    /// An array of strings.
    pub fn string_array(&self, key: &str) -> Result<Option<Vec<String>>, ArgError> {
        let Some(value) = self.raw(key) else { return Ok(None) };
        strings(&value).map(Some).ok_or_else(|| ArgError::type_error(key, "must be an array of strings"))
    }

    /// A `{ name: value }` object of strings, in insertion order.
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, ArgError> {
        let Some(value) = self.raw(key) else { return Ok(Vec::new()) };
        let bad = || ArgError::type_error(key, "must be an object mapping names to strings");
        if !value.is_object() || Array::is_array(&value) {
            return Err(bad());
        }
        Object::entries(value.unchecked_ref())
            .iter()
            .map(|pair| {
                let pair: Array = pair.unchecked_into();
                Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)
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
    if !text.is_valid_utf16() {
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
