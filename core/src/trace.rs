//! W3C `traceparent` values: a fresh trace for every request, so each failure can be found in the
//! server's logs by the `traceId` its error carries.

use crate::platform::Platform;

/// A `traceparent` header value and its trace id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// `00-{trace id}-{span id}-01`.
    pub traceparent: String,
    /// The 32 hex digits of the trace id.
    pub trace_id: String,
}

/// Builds a trace from six random 32-bit words (four for the trace id, two for the span id).
pub fn from_words(words: [u32; 6]) -> Trace {
    let [a, b, c, d, e, f] = words;
    // An all-zero id is invalid per the spec; the odds are nil, but the fix is free.
    let a = if a | b | c | d == 0 { 1 } else { a };
    let e = if e | f == 0 { 1 } else { e };
    let mut trace_id = String::with_capacity(32);
    for word in [a, b, c, d] {
        push_hex(&mut trace_id, word);
    }
    let mut traceparent = String::with_capacity(55);
    traceparent.push_str("00-");
    traceparent.push_str(&trace_id);
    traceparent.push('-');
    push_hex(&mut traceparent, e);
    push_hex(&mut traceparent, f);
    traceparent.push_str("-01");
    Trace {
        traceparent,
        trace_id,
    }
}

/// Appends a word as eight lower-case hex digits (what `{:08x}` does, without the formatter).
fn push_hex(out: &mut String, word: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..8).rev() {
        out.push(char::from(HEX[((word >> (shift * 4)) & 0xf) as usize]));
    }
}

/// A fresh trace from the platform's randomness.
pub fn fresh<P: Platform>(p: &P) -> Trace {
    from_words([
        p.random_u32(),
        p.random_u32(),
        p.random_u32(),
        p.random_u32(),
        p.random_u32(),
        p.random_u32(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_a_w3c_traceparent() {
        let t = from_words([0xdeadbeef, 1, 2, 3, 0xabc, 0xdef]);
        assert_eq!(t.trace_id, "deadbeef000000010000000200000003");
        assert_eq!(
            t.traceparent,
            "00-deadbeef000000010000000200000003-00000abc00000def-01"
        );
    }

    #[test]
    fn never_emits_all_zero_ids() {
        let t = from_words([0; 6]);
        assert_ne!(t.trace_id, "0".repeat(32));
        assert!(!t.traceparent.contains("-0000000000000000-"));
    }
}

thread_local! {
    /// The trace id of the newest request that succeeded, until [`take_success`] reads it.
    static LAST_SUCCESS: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Records the trace id of a request that succeeded (`call::send` does, for every one).
pub fn note_success(trace_id: &str) {
    LAST_SUCCESS.with(|slot| *slot.borrow_mut() = Some(trace_id.to_string()));
}

/// The trace id recorded last, cleared. A call's result takes it in the same turn of the event
/// loop as its last request's answer (no await lies between them, and the host runs one task at
/// a time), so it is that call's own: the `traceId` of its result.
pub fn take_success() -> Option<String> {
    LAST_SUCCESS.with(|slot| slot.borrow_mut().take())
}
