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

/// An id that goes into a URL path: non-empty after trimming, no control characters.
pub fn id(param: &str, value: &str) -> Result<String, ArgError> {
    if value.trim().is_empty() {
        return Err(ArgError::type_error(param, "must be a non-empty string"));
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

/// A duration in seconds that must be above zero (a poll interval or a request timeout).
pub fn positive_seconds(param: &str, value: f64) -> Result<f64, ArgError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(ArgError::range_error(
            param,
            "must be a finite number of seconds above 0",
        ));
    }
    Ok(value)
}

/// A positive quantity such as CPUs.
pub fn positive(param: &str, value: f64) -> Result<f64, ArgError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(ArgError::range_error(
            param,
            "must be a finite number above 0",
        ));
    }
    Ok(value)
}

/// A positive whole number such as megabytes.
pub fn positive_integer(param: &str, value: f64) -> Result<f64, ArgError> {
    if !value.is_finite() || value <= 0.0 || value.fract() != 0.0 || value > 9.0e15 {
        return Err(ArgError::range_error(
            param,
            "must be a whole number above 0",
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
    }

    #[test]
    fn durations_and_quantities_are_range_checked() {
        assert_eq!(seconds("timeout", 0.0).unwrap(), 0.0);
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(seconds("timeout", bad).unwrap_err().is_range);
        }
        assert!(positive_seconds("pollInterval", 0.0).is_err());
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
