//! JSON as the JS engine parsed it: [`Json`] for `JsValue`, and response bodies.
//!
//! Bodies are parsed by the engine's own `JSON.parse`, which is faster than any parser compiled
//! to wasm, and fields are then read one by one. Keys are JS strings created once per key, not per
//! read, so decoding a 10,000-snapshot list does not re-encode `"sandbox_id"` 10,000 times.

use js_sys::{Array, JsString, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::platform::{Body, Json, Key};

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

impl Json for JsValue {
    fn get(&self, key: Key) -> Option<JsValue> {
        let value = WIRE_KEYS.with(|keys| keys.get(key as usize).map(|k| Reflect::get(self, k)))?.ok()?;
        if value.is_null_or_undefined() {
            None
        } else {
            Some(value)
        }
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
    fn elements(&self) -> Option<Vec<JsValue>> {
        if !Array::is_array(self) {
            return None;
        }
        Some(self.unchecked_ref::<Array>().to_vec())
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
    type Json = JsValue;

    fn text(&self) -> String {
        match self {
            JsBody::Text(text) => String::from(text),
            JsBody::Bytes(bytes) => String::from_utf8(bytes.to_vec()).unwrap_or_default(),
        }
    }

    fn parse_json(&self) -> Result<JsValue, String> {
        match self {
            JsBody::Text(text) => parse(text),
            JsBody::Bytes(_) => parse(&JsString::from(self.text())),
        }
    }
}

/// `JSON.parse`, with the engine's complaint as the error.
pub fn parse(text: &JsString) -> Result<JsValue, String> {
    json_parse(text).map_err(|e| crate::wasm::errors::describe(&e))
}
