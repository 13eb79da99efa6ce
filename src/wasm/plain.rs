//! Answers passed through as plain JS objects, the official TypeScript SDK's way (`fromSnakeKeys`):
//! keys camelCased, `*_at` and `timestamp` numbers made `Date`s, `null` made `undefined`, every
//! other field kept, unknown ones included. One generic path instead of a typed model per answer
//! (process info, output, sandbox fields): a newer server's fields reach the caller unchanged.
//! Also the `traceId` every successful result carries.

use js_sys::{Array, Date, Object, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use tensorlake_snapshots_core::processes::{is_time_key, js_key};
use tensorlake_snapshots_core::time::epoch_number_to_ms;

#[wasm_bindgen]
extern "C" {
    /// `Object.entries`; only called on values `JSON.parse` made, which have no getters to throw.
    #[wasm_bindgen(js_namespace = Object, js_name = entries)]
    fn entries(value: &JsValue) -> Array;
}

/// Levels converted; anything deeper is kept as `JSON.parse` made it. `JSON.parse` takes any
/// depth and each level here is a wasm stack frame: an answer of 24 KB nested 8,000 deep overflowed
/// the stack, a trap that ended the Node process.
const MAX_DEPTH: u32 = 64;

/// `value` as the caller sees it (see the module comment).
pub fn plain(value: &JsValue) -> JsValue {
    convert(value, MAX_DEPTH)
}

fn convert(value: &JsValue, levels: u32) -> JsValue {
    if value.is_null() {
        return JsValue::UNDEFINED;
    }
    if levels == 0 {
        return value.clone();
    }
    if Array::is_array(value) {
        return value
            .unchecked_ref::<Array>()
            .iter()
            .map(|item| convert(&item, levels - 1))
            .collect::<Array>()
            .into();
    }
    if !value.is_object() {
        return value.clone();
    }
    let out = Object::new();
    for pair in entries(value).iter() {
        let pair: Array = pair.unchecked_into();
        let Some(key) = pair.get(0).as_string() else {
            continue;
        };
        let item = pair.get(1);
        let converted = match item.as_f64() {
            Some(n) if is_time_key(&key) => {
                epoch_number_to_ms(n).map_or(JsValue::UNDEFINED, |ms| Date::new(&ms.into()).into())
            }
            _ => convert(&item, levels - 1),
        };
        // A fresh plain object: setting a property cannot throw.
        let _ = Reflect::set(&out, &js_key(&key).into(), &converted);
    }
    out.into()
}

/// Gives an object or array result the trace id of the call's last successful request, as a
/// non-enumerable, read-only `traceId` (so `JSON.stringify`, spreads and deep comparisons see the
/// record alone). Other results (`undefined`, strings) are returned as they are.
pub fn attach(value: JsValue) -> JsValue {
    let trace = tensorlake_snapshots_core::trace::take_success();
    if let (Some(trace), true) = (trace, value.is_object()) {
        attach_trace(&value, &trace);
    }
    value
}

#[wasm_bindgen(module = "/js/records.js")]
extern "C" {
    // One crossing per call instead of seven (a descriptor object, its `value`, the extensibility
    // check, `defineProperty`) and one string instead of three: every call's result goes through it.
    #[wasm_bindgen(js_name = attachTrace)]
    fn attach_trace(value: &JsValue, trace: &str);
}
