//! Property tests of the pure core: the id and route builder, numbers sent on the wire, timestamp
//! parsing and response decoding. Each runs 1,000 cases by default; `PROPTEST_CASES=1000000`
//! runs the long mode (see the README's figures).

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::{args, json_out, models, routes, testing, time, url};

/// 1,000 cases unless `PROPTEST_CASES` says otherwise; failures are not persisted to files in
/// the source tree (the failing input is printed instead).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Reverses `encode_component`; `None` when the text is not a whole percent-encoding.
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Ids as callers write them: real-looking ids, dots, slashes, percent signs and any Unicode.
fn id_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,40}",
        "[./%?#&=+ ]{1,6}",
        any::<String>(),
        "\\PC{0,8}(\\.\\.|/|%2e|%2F)\\PC{0,8}",
    ]
}

/// Any JSON value, a few levels deep.
fn json_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN", |n| serde_json::Number::from_f64(n)
            .map(Value::Number)),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("snapshot_id".to_string()),
                    Just("sandbox_id".to_string()),
                    Just("status".to_string()),
                    Just("created_at".to_string()),
                    Just("snapshots".to_string()),
                    Just("sandboxes".to_string()),
                    Just("entries".to_string()),
                    Just("resources".to_string()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    /// An accepted id always lands in exactly one path segment and reads back unchanged; a
    /// refused one is refused without panicking.
    #[test]
    fn ids_stay_in_their_path_segment(id in id_strategy()) {
        let cfg = testing::config();
        let prefix = routes::snapshots(&cfg);
        match args::id("snapshotId", &id) {
            Ok(accepted) => {
                prop_assert_eq!(&accepted, &id);
                let route = routes::snapshot(&cfg, &accepted);
                let segment = route.strip_prefix(&format!("{prefix}/")).expect("route under the list route");
                prop_assert!(!segment.is_empty());
                prop_assert!(!segment.contains(['/', '?', '#']), "segment {segment}");
                prop_assert!(segment != "." && segment != "..");
                prop_assert_eq!(percent_decode(segment), Some(id));
            }
            Err(err) => {
                prop_assert!(err.message.starts_with("snapshotId: "));
                prop_assert!(id.trim().is_empty() || id.len() > args::MAX_ID_BYTES || id == "." || id == ".."
                    || id.chars().any(char::is_control));
            }
        }
    }

    /// Query values (file paths) survive encoding too.
    #[test]
    fn query_values_round_trip(path in any::<String>()) {
        let encoded = url::encode_component(&path);
        prop_assert!(!encoded.contains(['&', '=', '#', '/', '?', ' ']));
        prop_assert_eq!(percent_decode(&encoded), Some(path));
    }

    /// A quantity that passes validation is sent as exactly that number.
    #[test]
    fn validated_quantities_go_out_exactly(value in prop_oneof![
        any::<f64>(),
        (1u64..=2_147_483_647_000).prop_map(|t| t as f64 / 1000.0),
        (1u64..=2_147_483_647).prop_map(|n| n as f64),
        (-12i32..12).prop_map(|e| 10f64.powi(e)),
    ]) {
        if let Ok(v) = args::wire_quantity("cpus", value) {
            let text = json_out::number(v);
            let parsed: f64 = serde_json::from_str(&text).expect("a JSON number");
            prop_assert_eq!(parsed, v, "{} went out as {}", v, text);
            prop_assert!(v >= 0.001);
        }
        if let Ok(v) = args::positive_integer("memoryMb", value) {
            let text = json_out::number(v);
            prop_assert_eq!(serde_json::from_str::<f64>(&text).expect("a JSON number"), v);
            prop_assert!(!text.contains('.'));
        }
        if let Ok(v) = args::poll_interval("pollInterval", value) {
            prop_assert!(v >= args::MIN_POLL_INTERVAL_S);
        }
    }

    /// Any epoch number gives nothing or a time a JavaScript `Date` can hold.
    #[test]
    fn epoch_numbers_fit_a_date(value in prop_oneof![any::<f64>(), 0f64..1e21]) {
        if let Some(ms) = time::epoch_number_to_ms(value) {
            prop_assert!(ms.is_finite() && (0.0..=time::MAX_DATE_MS).contains(&ms));
        }
    }

    /// Any text gives nothing or a time in range, without panicking.
    #[test]
    fn timestamp_text_never_panics(text in prop_oneof![
        any::<String>(),
        "[0-9]{1,30}(\\.[0-9]{0,9})?",
        "[0-9+-]{4,9}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
    ]) {
        if let Some(ms) = time::epoch_text_to_ms(&text) {
            prop_assert!(ms.is_finite() && ms.abs() <= time::MAX_DATE_MS);
        }
        let _ = time::retry_after_ms(&text, 0.0);
    }

    /// RFC 3339 timestamps read as chrono reads them.
    #[test]
    fn rfc3339_matches_chrono(
        secs in 0i64..253_402_300_799,
        millis in 0u32..1000,
        offset_min in -(23 * 60 + 59)..=(23 * 60 + 59i32),
        sep in prop_oneof![Just('T'), Just('t'), Just(' ')],
    ) {
        let offset = chrono::FixedOffset::east_opt(offset_min * 60).expect("offset in range");
        let at = chrono::DateTime::from_timestamp(secs, millis * 1_000_000).expect("in range").with_timezone(&offset);
        let text = at.format("%Y-%m-%d{}%H:%M:%S%.3f%:z").to_string().replace("{}", &sep.to_string());
        let text = if offset_min == 0 && millis % 2 == 0 { text.replace("+00:00", "Z") } else { text };
        prop_assert_eq!(time::epoch_text_to_ms(&text), Some(at.timestamp_millis() as f64), "{}", text);
    }

    /// HTTP dates in `Retry-After` read as chrono reads them.
    #[test]
    fn http_dates_match_chrono(secs in 0i64..253_402_300_799, now in 0i64..253_402_300_799) {
        let at = chrono::DateTime::from_timestamp(secs, 0).expect("in range");
        let text = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let want = ((secs - now) * 1000).max(0) as f64;
        prop_assert_eq!(time::retry_after_ms(&text, now as f64 * 1000.0), Some(want), "{}", text);
    }

    /// Decoders take any JSON without panicking, and never invent an id or a status.
    #[test]
    fn decoders_never_panic(body in json_strategy()) {
        if let Ok(s) = models::snapshot(&body) {
            prop_assert!(s.snapshot_id.is_string() && s.status.is_string());
            if let Some(ms) = s.created_at_ms {
                prop_assert!(ms.abs() <= time::MAX_DATE_MS);
            }
        }
        let _ = models::snapshot_list(&body);
        let _ = models::snapshot_created(&body);
        if let Ok(sb) = models::sandbox(&body) {
            prop_assert!(sb.sandbox_id.is_string() && sb.status.is_string());
        }
        let _ = models::sandbox_list(&body);
        let _ = models::directory(&body);
    }

    /// A well-formed snapshot decodes to exactly its fields, whatever else the object carries.
    #[test]
    fn snapshots_decode_to_their_fields(
        id in "[a-z0-9-]{1,30}",
        use_specific_key in any::<bool>(),
        status in prop_oneof![
            Just("in_progress".to_string()), Just("completed".to_string()), "[a-z_]{1,12}",
        ],
        size in proptest::option::of(0u64..(1 << 53)),
        created_ms in proptest::option::of(1_000_000_000_000u64..8_000_000_000_000),
        extra in prop::collection::btree_map("x_[a-z]{1,8}", json_strategy(), 0..4),
    ) {
        let mut obj = Map::new();
        obj.insert(if use_specific_key { "snapshot_id" } else { "id" }.into(), json!(id));
        obj.insert("status".into(), json!(status));
        if let Some(size) = size {
            obj.insert("size_bytes".into(), json!(size));
        }
        if let Some(ms) = created_ms {
            obj.insert("created_at".into(), json!(ms));
        }
        obj.extend(extra);
        let decoded = models::snapshot(&Value::Object(obj)).expect("a valid snapshot decodes");
        prop_assert_eq!(decoded.snapshot_id, json!(id));
        prop_assert_eq!(decoded.status, json!(status));
        prop_assert_eq!(decoded.size_bytes, size.map(|s| s as f64));
        prop_assert_eq!(decoded.created_at_ms, created_ms.map(|m| m as f64));
    }
}
