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
    let trace_id = format!("{a:08x}{b:08x}{c:08x}{d:08x}");
    let traceparent = format!("00-{trace_id}-{e:08x}{f:08x}-01");
    Trace {
        traceparent,
        trace_id,
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
