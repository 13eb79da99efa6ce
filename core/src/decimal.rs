//! Number formatting without `core::fmt`'s float machinery.
//!
//! Formatting an `f64` with `{}` links Rust's float printer: measured (wasm `--profile wasm`,
//! wasm-opt -Oz, gzip -9), 9,522 bytes gzipped (78,130 → 87,652), over the 80 KB budget. The client only
//! ever prints quantities such as CPUs, seconds and megabytes, which are fine at three decimals, so a
//! fixed-point writer over integers does the job at a fraction of the size.

/// Writes `value` with at most three decimals and no trailing zeros (`4` → `4`, `0.5` → `0.5`,
/// `1.2345` → `1.235`). Non-finite values become `0`: callers validate before they format.
pub fn format_decimal(value: f64) -> String {
    if !value.is_finite() {
        return "0".to_string();
    }
    let negative = value < 0.0;
    // Beyond 2^53 / 1000 the fraction is meaningless anyway; clamp so the cast cannot saturate oddly.
    let thousandths = (value.abs() * 1000.0).round().min(9.0e15) as u64;
    let (whole, frac) = (thousandths / 1000, thousandths % 1000);
    let mut out = String::new();
    if negative && thousandths != 0 {
        out.push('-');
    }
    out.push_str(&whole.to_string());
    if frac != 0 {
        let digits = [frac / 100, (frac / 10) % 10, frac % 10];
        let used = if frac % 100 == 0 {
            1
        } else if frac % 10 == 0 {
            2
        } else {
            3
        };
        out.push('.');
        for d in digits.iter().take(used) {
            out.push(char::from(b'0' + (*d as u8)));
        }
    }
    out
}

/// Formats a JSON number for a request body: integers as integers, others with up to three
/// decimals. Same rules as [`format_decimal`]; the separate name says where it is used.
pub fn json_number(value: f64) -> String {
    format_decimal(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_quantities_without_float_printing() {
        let cases = [
            (4.0, "4"),
            (0.5, "0.5"),
            (1.25, "1.25"),
            (1.2345, "1.235"),
            (2048.0, "2048"),
            (0.001, "0.001"),
            (-1.5, "-1.5"),
            (-0.0001, "0"),
            (300.0, "300"),
            (f64::NAN, "0"),
        ];
        for (value, want) in cases {
            assert_eq!(format_decimal(value), want, "{value}");
        }
    }
}
