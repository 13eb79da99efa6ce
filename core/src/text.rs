//! Cutting text to a byte budget at a character boundary (std's `str::floor_char_boundary` is
//! not stable yet).
//!
//! Searching and replacing used to be hand-written here too, to keep core's Two-Way searcher out
//! of the wasm. Measured: std's `str::find`, `contains` and `replace` cost 384 bytes gzipped
//! (78,130 → 78,514), which does not pay for a hand-written search, so the callers use std.

/// At most `max_bytes` of `text`, cut at a character boundary.
pub fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("hi", 10), "hi");
    }
}
