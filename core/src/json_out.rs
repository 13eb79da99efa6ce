//! Writing the few small JSON request bodies the API takes, flat enough to write by hand with
//! correct string escaping.
//!
//! Measured (wasm `--profile wasm`, wasm-opt -Oz, gzip -9, on the run body): serde derives with
//! `serde_json::to_string` cost 8,292 bytes gzipped (78,130 → 86,422); serde derives with
//! `serde-wasm-bindgen` and the engine's `JSON.stringify` cost 7,814 (→ 85,944). Both break the
//! 80 KB budget (81,920 bytes), so request bodies stay here. The tests parse what it writes with
//! `serde_json`.

use crate::decimal::json_number;

/// A JSON string literal, escaped per RFC 8259.
pub fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let n = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[n >> 4]));
                out.push(char::from(HEX[n & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (see [`json_number`] for the precision).
pub fn number(value: f64) -> String {
    json_number(value)
}

/// A JSON array of strings.
pub fn string_array(values: &[String]) -> String {
    let mut out = String::from("[");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&string(value));
    }
    out.push(']');
    out
}

/// Builds a JSON object from already-encoded values, skipping the absent ones, in order.
#[derive(Debug, Default)]
pub struct Object {
    body: String,
}

impl Object {
    /// An empty object.
    pub fn new() -> Object {
        Object::default()
    }
    /// Adds `key: value` (value already JSON) when present.
    pub fn raw(mut self, key: &str, value: Option<String>) -> Object {
        if let Some(value) = value {
            if !self.body.is_empty() {
                self.body.push(',');
            }
            self.body.push_str(&string(key));
            self.body.push(':');
            self.body.push_str(&value);
        }
        self
    }
    /// Adds a string field when present.
    pub fn str(self, key: &str, value: Option<&str>) -> Object {
        self.raw(key, value.map(string))
    }
    /// Adds a number field when present.
    pub fn num(self, key: &str, value: Option<f64>) -> Object {
        self.raw(key, value.map(number))
    }
    /// True when no field was added.
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
    /// The finished object.
    pub fn finish(self) -> String {
        let mut out = String::with_capacity(self.body.len() + 2);
        out.push('{');
        out.push_str(&self.body);
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_a_real_parser() {
        for s in [
            "plain",
            "quote\" backslash\\ newline\n tab\t",
            "\u{1}\u{1f}",
            "é漢😀",
            "</script>",
        ] {
            let back: String = serde_json::from_str(&string(s)).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn objects_skip_absent_fields_and_nest() {
        let inner = Object::new().num("cpus", Some(4.0)).num("memory_mb", None);
        let body = Object::new()
            .str("image", None)
            .raw("resources", Some(inner.finish()))
            .str("snapshot_id", Some("snap-1"))
            .raw("args", Some(string_array(&["-c".into(), "echo hi".into()])))
            .finish();
        assert_eq!(
            body,
            r#"{"resources":{"cpus":4},"snapshot_id":"snap-1","args":["-c","echo hi"]}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["args"][1], "echo hi");
        assert!(Object::new().is_empty());
    }
}
