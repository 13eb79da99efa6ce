//! Argument validation shared by every call. Each failure names the parameter and becomes a JS
//! `TypeError` (wrong kind of value) or `RangeError` (right kind, unusable value) before any
//! request is sent.

use crate::decimal::format_decimal;

/// A rejected argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    /// The JS name of the parameter, e.g. `pollInterval`.
    pub param: String,
    /// Why it was rejected; the message starts with the parameter name.
    pub message: String,
    /// `RangeError` when true, `TypeError` otherwise.
    pub is_range: bool,
}

impl ArgError {
    /// A value of the wrong kind (a number where a string belongs, an empty id).
    #[inline(never)] // one shared copy: it is called from dozens of places
    pub fn type_error(param: &str, why: &str) -> ArgError {
        ArgError::new(param, why, false)
    }
    /// A value of the right kind outside what is allowed.
    #[inline(never)]
    pub fn range_error(param: &str, why: &str) -> ArgError {
        ArgError::new(param, why, true)
    }
    fn new(param: &str, why: &str, is_range: bool) -> ArgError {
        let mut message = String::with_capacity(param.len() + 2 + why.len());
        message.push_str(param);
        message.push_str(": ");
        message.push_str(why);
        ArgError { param: param.to_string(), message, is_range }
    }
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The longest id accepted, in UTF-8 bytes. Real ids are under 64; the limit keeps a runaway
/// string (hundreds of megabytes) from being percent-encoded, which would exhaust wasm memory.
pub const MAX_ID_BYTES: usize = 1024;

/// An id that goes into a URL path: non-empty after trimming, at most [`MAX_ID_BYTES`], no control
/// characters, and not `.` or `..`, which a URL parser would resolve into another route.
pub fn id(param: &str, value: &str) -> Result<String, ArgError> {
    if value.trim().is_empty() {
        return Err(ArgError::type_error(param, "must be a non-empty string"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(ArgError::type_error(param, "must be at most 1024 bytes long"));
    }
    if value == "." || value == ".." {
        return Err(ArgError::type_error(param, "must not be '.' or '..'"));
    }
    // C0 controls and DEL in ASCII, C1 controls as their UTF-8 encoding (0xC2 0x80..=0x9F).
    let bytes = value.as_bytes();
    let control = bytes.iter().enumerate().any(|(i, &b)| {
        b < 0x20 || b == 0x7f || (b == 0xc2 && bytes.get(i + 1).is_some_and(|&n| (0x80..=0x9f).contains(&n)))
    });
    if control {
        return Err(ArgError::type_error(
            param,
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

/// A duration in seconds that may be zero (a timeout of 0 means "check once").
pub fn seconds(param: &str, value: f64) -> Result<f64, ArgError> {
    if !value.is_finite() || value < 0.0 {
        return Err(ArgError::range_error(
            param,
            "must be a finite, non-negative number of seconds",
        ));
    }
    Ok(value)
}

/// The smallest poll interval, in seconds: a wait never polls more than 100 times a second.
pub const MIN_POLL_INTERVAL_S: f64 = 0.01;

/// A poll interval in seconds: finite and at least [`MIN_POLL_INTERVAL_S`].
pub fn poll_interval(param: &str, value: f64) -> Result<f64, ArgError> {
    if !value.is_finite() || value < MIN_POLL_INTERVAL_S {
        return Err(ArgError::range_error(
            param,
            "must be a finite number of seconds, at least 0.01",
        ));
    }
    Ok(value)
}

/// A duration in seconds that must be above zero and stays on this side of the wire (a request
/// timeout).
pub fn positive_seconds(param: &str, value: f64) -> Result<f64, ArgError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(ArgError::range_error(
            param,
            "must be a finite number of seconds above 0",
        ));
    }
    Ok(value)
}

/// The largest number of seconds or whole units sent to the server: numbers go out as written
/// with at most three decimals, and below this every such value is exact.
pub const MAX_WIRE_QUANTITY: f64 = 2_147_483_647.0;

/// True when `value` is exactly the double a decimal with at most three decimals names, so the
/// body (written from the same rounded thousandths) parses back to this very number. Dividing
/// the integer thousandths by 1000 is one correctly rounded operation, as a JSON parser's is.
fn has_three_decimals_at_most(value: f64) -> bool {
    (value * 1000.0).round() / 1000.0 == value
}

/// A quantity sent in a request body, such as CPUs or a command's timeout in seconds: from 0.001
/// to [`MAX_WIRE_QUANTITY`], with at most three decimals. Anything else would be rounded on the
/// way out (`1e-9` would become `0`, which the server reads as "none").
pub fn wire_quantity(param: &str, value: f64) -> Result<f64, ArgError> {
    if !value.is_finite() || !(0.001..=MAX_WIRE_QUANTITY).contains(&value) {
        return Err(ArgError::range_error(
            param,
            "must be a number from 0.001 to 2147483647",
        ));
    }
    if !has_three_decimals_at_most(value) {
        return Err(ArgError::range_error(param, "must have at most three decimals"));
    }
    Ok(value)
}

/// A positive quantity such as CPUs (see [`wire_quantity`]).
pub fn positive(param: &str, value: f64) -> Result<f64, ArgError> {
    wire_quantity(param, value)
}

/// A positive whole number such as megabytes, at most [`MAX_WIRE_QUANTITY`].
pub fn positive_integer(param: &str, value: f64) -> Result<f64, ArgError> {
    if !value.is_finite() || value < 1.0 || value.fract() != 0.0 || value > MAX_WIRE_QUANTITY {
        return Err(ArgError::range_error(
            param,
            "must be a whole number from 1 to 2147483647",
        ));
    }
    Ok(value)
}

/// A small non-negative count such as a retry limit.
pub fn small_count(param: &str, value: f64, max: u32) -> Result<u32, ArgError> {
    if !value.is_finite() || value < 0.0 || value.fract() != 0.0 || value > f64::from(max) {
        let why = format!("must be a whole number from 0 to {}", format_decimal(f64::from(max)));
        return Err(ArgError::range_error(param, &why));
    }
    Ok(value as u32)
}

/// One of a fixed set of string values.
pub fn one_of<'a>(param: &str, value: &str, allowed: &[&'a str]) -> Result<&'a str, ArgError> {
    allowed
        .iter()
        .copied()
        .find(|a| *a == value)
        .ok_or_else(|| {
            let mut why = format!("'{value}' is not one of ");
            for (i, a) in allowed.iter().enumerate() {
                if i > 0 {
                    why.push_str(", ");
                }
                why.push('\'');
                why.push_str(a);
                why.push('\'');
            }
            ArgError::range_error(param, &why)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_real_strings() {
        assert_eq!(id("snapshotId", "snap-1").unwrap(), "snap-1");
        let err = id("snapshotId", "  ").unwrap_err();
        assert!(!err.is_range);
        assert!(err.message.starts_with("snapshotId:"));
        assert!(id("sandboxId", "a\nb").is_err());
        for dots in [".", ".."] {
            assert!(id("snapshotId", dots).unwrap_err().message.contains("'.' or '..'"));
        }
        assert!(id("snapshotId", "...").is_ok());
        assert!(id("snapshotId", &"a".repeat(MAX_ID_BYTES)).is_ok());
        assert!(id("snapshotId", &"a".repeat(MAX_ID_BYTES + 1)).unwrap_err().message.contains("1024 bytes"));
    }

    #[test]
    fn quantities_sent_on_the_wire_are_exact_or_refused() {
        // The last one was found by the long property run: within 4 ulps of 1758233028.126.
        for bad in [1e-9, 0.0004, 1.0005, 1e15, 3e9, -1.0, f64::NAN, 1758233028.1259997] {
            assert!(wire_quantity("cpus", bad).unwrap_err().is_range, "{bad}");
        }
        for good in [0.001, 0.1, 0.5, 1.25, 4.0, 2147483647.0, 1234567.125] {
            assert_eq!(wire_quantity("cpus", good).unwrap(), good);
        }
        assert!(positive_integer("memoryMb", 1e15).is_err());
        assert!(positive_integer("memoryMb", 2147483648.0).is_err());
        assert_eq!(positive_integer("memoryMb", 2147483647.0).unwrap(), 2147483647.0);
    }

    #[test]
    fn durations_and_quantities_are_range_checked() {
        assert_eq!(seconds("timeout", 0.0).unwrap(), 0.0);
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(seconds("timeout", bad).unwrap_err().is_range);
        }
        assert!(positive_seconds("requestTimeout", 0.0).is_err());
        assert!(poll_interval("pollInterval", 1e-9).unwrap_err().is_range);
        assert_eq!(poll_interval("pollInterval", 0.01).unwrap(), 0.01);
        assert!(positive("cpus", 0.0).is_err());
        assert!(positive("cpus", -2.0).is_err());
        assert_eq!(positive("cpus", 0.5).unwrap(), 0.5);
        assert!(positive_integer("memoryMb", 1.5).is_err());
        assert_eq!(positive_integer("memoryMb", 2048.0).unwrap(), 2048.0);
        assert_eq!(small_count("maxRetries", 0.0, 20).unwrap(), 0);
        assert!(small_count("maxRetries", 21.0, 20)
            .unwrap_err()
            .message
            .contains("0 to 20"));
    }

    #[test]
    fn enumerations_list_what_is_allowed() {
        let err = one_of("snapshotType", "disk", &["memory", "filesystem"]).unwrap_err();
        assert!(err.is_range);
        assert_eq!(
            err.message,
            "snapshotType: 'disk' is not one of 'memory', 'filesystem'"
        );
        assert_eq!(
            one_of("waitUntil", "completed", &["local_ready", "completed"]).unwrap(),
            "completed"
        );
    }
}
