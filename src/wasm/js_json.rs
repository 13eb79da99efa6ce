//! JSON as the JS engine parsed it: [`Json`] for [`JsJson`] (a `JsValue` from `JSON.parse`), and
//! response bodies.
//!
//! Bodies are parsed by the engine's own `JSON.parse`, which is faster than any parser compiled
//! to wasm, and fields are then read one by one. This is the one place the design card's serde
//! stack is deliberately not used: decoding responses with serde-wasm-bindgen was measured at
//! +20.8 KB gzipped and a 10,000-snapshot listing 3.6–5.5× slower (issue 10), while this path
//! keeps that listing within 1.5× of `JSON.parse` plus a plain JS mapping (BENCHMARKS.md, "serde
//! for options": 1.41× on Node 20, 1.48× on Node 22, in the run of 2026-12-02 12:44 UTC). Keys are JS strings created once per key, not per
//! read, so decoding a 10,000-snapshot list does not re-encode `"sandbox_id"` 10,000 times.

use js_sys::{Array, JsString, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use tensorlake_snapshots_core::platform::{Body, Json, Key};

#[wasm_bindgen]
extern "C" {
    /// Any non-null JS value, indexed with a plain `value[key]`. `Reflect.get` is bound with
    /// `catch`, and the try/catch wrapper around every call kept V8 from inlining it: decoding a
    /// 10,000-snapshot listing took twice as long. A plain access throws only on `null` and
    /// `undefined`, which is why `Json::field` requires a value that is neither.
    pub type Indexable;
    #[wasm_bindgen(method, structural, indexing_getter)]
    fn at(this: &Indexable, key: &JsValue) -> JsValue;
    /// `this[key] = value`, without `Reflect.set`'s catching wrapper; `this` must be an object.
    #[wasm_bindgen(method, structural, indexing_setter)]
    pub fn put(this: &Indexable, key: &JsValue, value: &JsValue);

}

#[wasm_bindgen(module = "/js/records.js")]
extern "C" {
    // One crossing per typed read instead of two (see js/records.js).
    #[wasm_bindgen(js_name = stringField)]
    fn string_field_js(value: &JsValue, key: &JsValue) -> Option<JsValue>;
    #[wasm_bindgen(js_name = numberField)]
    fn number_field_js(value: &JsValue, key: &JsValue) -> f64;
    // `TextDecoder`'s lossy decoding rather than `String::from_utf8_lossy`, whose UTF-8 chunk
    // iterator cost about 1 KB of wasm for the one error-message prefix that needs it.
    #[wasm_bindgen(js_name = decodeLossy)]
    fn decode_lossy(bytes: &Uint8Array) -> JsString;
}

#[wasm_bindgen]
extern "C" {
    // js_sys::JSON::parse takes a Rust &str; this one takes the JS string as it came from
    // `response.text()`, so a large body is never copied into wasm memory and back.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &JsString) -> Result<JsValue, JsValue>;
}

thread_local! {
    static WIRE_KEYS: Vec<JsValue> = Key::ALL.iter().map(|k| JsValue::from_str(k.wire())).collect();
}

fn member(value: &JsValue, key: Key) -> JsValue {
    WIRE_KEYS.with(|keys| match keys.get(key as usize) {
        Some(k) => value.unchecked_ref::<Indexable>().at(k),
        None => JsValue::UNDEFINED,
    })
}

fn wire_key<T>(key: Key, read: impl FnOnce(&JsValue) -> Option<T>) -> Option<T> {
    WIRE_KEYS.with(|keys| keys.get(key as usize).and_then(read))
}

/// A value `JSON.parse` returned. A newtype only because the core's [`Json`] trait and `JsValue`
/// both live in other crates (Rust's orphan rule); it is a `JsValue` in memory and derefs to one.
#[derive(Debug, Clone)]
#[repr(transparent)]
pub struct JsJson(pub JsValue);

impl std::ops::Deref for JsJson {
    type Target = JsValue;
    fn deref(&self) -> &JsValue {
        &self.0
    }
}

impl From<JsJson> for JsValue {
    fn from(value: JsJson) -> JsValue {
        value.0
    }
}

impl From<JsValue> for JsJson {
    fn from(value: JsValue) -> JsJson {
        JsJson(value)
    }
}

impl Json for JsJson {
    fn get(&self, key: Key) -> Option<JsJson> {
        if self.is_null_or_undefined() {
            return None;
        }
        self.field(key)
    }
    fn field(&self, key: Key) -> Option<JsJson> {
        let value = member(self, key);
        if value.is_null_or_undefined() {
            None
        } else {
            Some(JsJson(value))
        }
    }
    fn string_field(&self, key: Key) -> Option<JsJson> {
        wire_key(key, |k| string_field_js(self, k)).map(JsJson)
    }
    fn number_field(&self, key: Key) -> Option<f64> {
        wire_key(key, |k| Some(number_field_js(self, k))).filter(|n| !n.is_nan())
    }
    fn is_string(&self) -> bool {
        JsValue::is_string(self)
    }
    fn as_string(&self) -> Option<String> {
        JsValue::as_string(self)
    }
    fn as_f64(&self) -> Option<f64> {
        JsValue::as_f64(self)
    }
    fn as_bool(&self) -> Option<bool> {
        JsValue::as_bool(self)
    }
    fn is_object(&self) -> bool {
        JsValue::is_object(self) && !Array::is_array(self)
    }
    fn elements(&self) -> Option<Vec<JsJson>> {
        if !Array::is_array(self) {
            return None;
        }
        // In place: a `JsJson` is a `JsValue` (`repr(transparent)`), so the Vec is reused.
        Some(self.unchecked_ref::<Array>().to_vec().into_iter().map(JsJson).collect())
    }
}

/// A read response body: text for everything the core parses, bytes for file downloads.
#[derive(Debug, Clone)]
pub enum JsBody {
    /// From `response.text()`.
    Text(JsString),
    /// From `response.arrayBuffer()`.
    Bytes(Uint8Array),
}

impl JsBody {
    /// The body as a JS value: the string, or the `Uint8Array`.
    pub fn into_js(self) -> JsValue {
        match self {
            JsBody::Text(text) => text.into(),
            JsBody::Bytes(bytes) => bytes.into(),
        }
    }
}

impl Body for JsBody {
    type Json = JsJson;

    fn text(&self) -> String {
        match self {
            JsBody::Text(text) => String::from(text),
            JsBody::Bytes(bytes) => String::from_utf8(bytes.to_vec()).unwrap_or_default(),
        }
    }

    fn text_prefix(&self, max_chars: usize) -> String {
        match self {
            // Sliced on the JS side, so only the prefix is copied into wasm memory.
            JsBody::Text(text) if text.length() as usize > max_chars => String::from(text.slice(0, max_chars as u32)),
            JsBody::Bytes(bytes) if bytes.length() as usize > max_chars * 4 => {
                let text = decode_lossy(&bytes.subarray(0, (max_chars * 4) as u32));
                String::from(text.slice(0, max_chars as u32))
            }
            _ => self.text(),
        }
    }

    fn parse_json(&self) -> Result<JsJson, String> {
        match self {
            JsBody::Text(text) => parse(text),
            JsBody::Bytes(_) => parse(&JsString::from(self.text())),
        }
    }
}

/// `JSON.parse`, with the engine's complaint as the error.
pub fn parse(text: &JsString) -> Result<JsJson, String> {
    json_parse(text).map(JsJson).map_err(|e| crate::wasm::errors::describe(&e))
}
