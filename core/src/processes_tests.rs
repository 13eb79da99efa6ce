use super::*;
use crate::platform::{Json, Method};
use crate::testing::{block_on, config, Fake, Scripted};

fn target() -> SandboxTarget {
    SandboxTarget {
        sandbox_id: "sbx-1".into(),
        base: "http://127.0.0.1:8900".into(),
    }
}

#[test]
fn process_urls_encode_names_and_keep_pids() {
    assert_eq!(
        process("http://h", "42", "/stdout/follow"),
        "http://h/api/v1/processes/42/stdout/follow"
    );
    assert_eq!(
        process("http://h", "web/../x", ""),
        "http://h/api/v1/processes/web%2F..%2Fx"
    );
    assert_eq!(
        sandbox_action(&config(), "sbx-1", "suspend"),
        "http://127.0.0.1:8900/v1/namespaces/default/sandboxes/sbx-1/suspend"
    );
}

#[test]
fn start_bodies_add_stdin_mode_only_when_piped() {
    let mut spec = ProcessSpec {
        run: RunSpec {
            command: "cat".into(),
            user: Some("\"root\"".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(start_body(&spec), r#"{"command":"cat","user":"root"}"#);
    spec.stdin_pipe = true;
    spec.name = Some("reader".into());
    assert_eq!(
        start_body(&spec),
        r#"{"command":"cat","user":"root","stdin_mode":"pipe","name":"reader"}"#
    );
    assert_eq!(signal_body(15.0), r#"{"signal":15}"#);
}

#[test]
fn update_and_network_bodies_send_only_what_was_given() {
    let update = SandboxUpdate {
        exposed_ports: Some(vec![8080.0, 9000.0]),
        allow_unauthenticated_access: Some(true),
        ..Default::default()
    };
    assert_eq!(
        update_body(&update),
        r#"{"allow_unauthenticated_access":true,"exposed_ports":[8080,9000]}"#
    );
    assert_eq!(update_body(&SandboxUpdate::default()), "{}");
    assert_eq!(network_body(None, &[], &[]), None);
    assert_eq!(network_body(Some(true), &[], &[]), None);
    assert_eq!(
        network_body(Some(false), &[], &[]).unwrap(),
        r#"{"allow_internet_access":false,"allow_out":[],"deny_out":[]}"#
    );
    assert_eq!(
        network_body(None, &["10.0.0.0/8".into()], &[]).unwrap(),
        r#"{"allow_internet_access":true,"allow_out":["10.0.0.0/8"],"deny_out":[]}"#
    );
}

#[test]
fn keys_are_camel_cased_like_the_typescript_sdk() {
    assert_eq!(camel_case("exit_code"), "exitCode");
    assert_eq!(
        camel_case("allow_unauthenticated_access"),
        "allowUnauthenticatedAccess"
    );
    assert_eq!(camel_case("pid"), "pid");
    assert_eq!(camel_case("_private"), "_private");
    assert_eq!(js_key("network_policy"), "network");
    assert_eq!(js_key("pending_reason"), "pendingReason");
    assert!(is_time_key("started_at") && is_time_key("timestamp") && !is_time_key("status"));
}

#[test]
fn sse_events_split_across_arbitrary_chunks() {
    let stream = "event: output\r\ndata: {\"line\":\"a\"}\r\n\r\n: keep-alive\n\ndata: {\"line\":\"b\"}\n\nevent: eof\ndata: {}\n\n";
    for size in 1..stream.len() {
        let mut decoder = SseDecoder::default();
        let mut out = VecDeque::new();
        for piece in stream.as_bytes().chunks(size) {
            decoder.push(std::str::from_utf8(piece).unwrap(), &mut out);
        }
        assert_eq!(
            Vec::from(out),
            vec![r#"{"line":"a"}"#, r#"{"line":"b"}"#, "{}"],
            "chunk size {size}"
        );
        assert!(decoder.ended);
    }
}

#[test]
fn an_endless_sse_line_is_dropped_not_held() {
    let mut decoder = SseDecoder::default();
    let mut out = VecDeque::new();
    decoder.push("data: ", &mut out);
    let block = "x".repeat(64 * 1024);
    for _ in 0..100 {
        decoder.push(&block, &mut out);
    }
    assert!(decoder.line.len() <= MAX_SSE_LINE_BYTES);
    decoder.push("\n\ndata: next\n\n", &mut out);
    assert_eq!(Vec::from(out), vec!["next"]);
}

#[test]
fn an_endless_event_of_short_data_lines_is_dropped_not_held() {
    // Each line is short, the event never ends: without a bound its data grew until the wasm
    // allocator failed, a trap that ended the Node process.
    let mut decoder = SseDecoder::default();
    let mut out = VecDeque::new();
    let line = format!("data: {}\n", "x".repeat(64 * 1024));
    for _ in 0..100 {
        decoder.push(&line, &mut out);
        assert!(decoder.data.as_ref().map_or(0, String::len) <= MAX_SSE_LINE_BYTES);
    }
    decoder.push("\ndata: next\n\n", &mut out);
    assert!(out.iter().all(|data| data.len() <= MAX_SSE_LINE_BYTES));
    assert_eq!(out.back().map(String::as_str), Some("next"));
}

#[test]
fn sandbox_snapshots_use_the_per_sandbox_route() {
    let fake = Fake::new(vec![Scripted::json(
        200,
        r#"{"snapshots":[{"id":"snap-1","sandbox_id":"sbx-1","status":"completed"}]}"#,
    )]);
    let cfg = config();
    let list = block_on(Api::new(&fake, &cfg).list_snapshots(Some("sbx-1"))).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        fake.sent()[0].url,
        "http://127.0.0.1:8900/v1/namespaces/default/sandboxes/sbx-1/snapshots"
    );
}

#[test]
fn sandbox_snapshots_fall_back_to_the_filtered_list_where_the_route_is_missing() {
    for status in [404, 405] {
        let fake = Fake::new(vec![
            Scripted::status(status, "no such route"),
            Scripted::json(
                200,
                r#"{"snapshots":[{"id":"a","sandbox_id":"sbx-1","status":"completed"},{"id":"b","sandbox_id":"sbx-2","status":"completed"}]}"#,
            ),
        ]);
        let cfg = config();
        let list = block_on(Api::new(&fake, &cfg).list_snapshots(Some("sbx-1"))).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].snapshot_id.as_string().as_deref(), Some("a"));
        assert_eq!(
            fake.sent()[1].url,
            "http://127.0.0.1:8900/v1/namespaces/default/snapshots"
        );
    }
    let fake = Fake::new(vec![Scripted::status(500, "boom")]);
    let cfg = config();
    assert!(block_on(Api::new(&fake, &cfg).list_snapshots(Some("sbx-1"))).is_err());
}

#[test]
fn waits_poll_until_the_status_and_stop_on_termination() {
    let mut gets = 0;
    let fake = Fake::with_handler(move |_, _| {
        gets += 1;
        let status = if gets < 3 { "suspending" } else { "suspended" };
        Scripted::json(200, &format!(r#"{{"id":"sbx-1","status":"{status}"}}"#))
    });
    let cfg = config();
    let rec =
        block_on(Api::new(&fake, &cfg).wait_for_sandbox("sbx-1", "suspended", 10_000.0, 1_000.0))
            .unwrap();
    assert_eq!(rec.status, "suspended");
    assert_eq!(fake.sleeps(), vec![1_000.0, 1_000.0]);

    let fake = Fake::new(vec![Scripted::json(
        200,
        r#"{"id":"sbx-1","status":"terminated"}"#,
    )]);
    let err =
        block_on(Api::new(&fake, &cfg).wait_for_sandbox("sbx-1", "running", 10_000.0, 1_000.0))
            .unwrap_err();
    assert!(
        err.message().contains("became terminated"),
        "{}",
        err.message()
    );

    let fake =
        Fake::with_handler(|_, _| Scripted::json(200, r#"{"id":"sbx-1","status":"suspending"}"#));
    let err =
        block_on(Api::new(&fake, &cfg).wait_for_sandbox("sbx-1", "suspended", 2_500.0, 1_000.0))
            .unwrap_err();
    assert!(
        err.message()
            .contains("did not become suspended within 2.5s"),
        "{}",
        err.message()
    );
}

#[test]
fn process_calls_name_the_sandbox_and_read_empty_answers_as_none() {
    let fake = Fake::new(vec![
        Scripted::status(204, ""),
        Scripted::json(201, r#"{"pid":7,"status":"running"}"#),
    ]);
    let cfg = config();
    let api = Api::new(&fake, &cfg);
    let close = process_call(
        &target(),
        Method::Post,
        process("http://h", "7", "/stdin/close"),
        RequestBody::Empty,
    );
    assert_eq!(close.class, RetryClass::Create);
    assert!(block_on(api.request_json(&close)).unwrap().is_none());
    let start = process_call(
        &target(),
        Method::Post,
        processes("http://h"),
        RequestBody::Empty,
    );
    assert_eq!(
        block_on(api.request_json(&start)).unwrap().unwrap()["pid"],
        7
    );
    assert_eq!(
        fake.sent()[0].header("X-Tensorlake-Sandbox-Id"),
        Some("sbx-1")
    );
    assert_eq!(
        process_call(
            &target(),
            Method::Get,
            processes("http://h"),
            RequestBody::Empty
        )
        .class,
        RetryClass::Idempotent
    );
    let patch = update_body(&SandboxUpdate {
        name: Some("n".into()),
        ..Default::default()
    });
    assert_eq!(patch, r#"{"name":"n"}"#);
}

#[test]
fn lifecycle_calls_map_404_to_sandbox_not_found_and_may_be_repeated() {
    let fake = Fake::new(vec![
        Scripted::status(503, "busy"),
        Scripted::status(404, "Sandbox not found"),
    ]);
    let cfg = config();
    let call = sandbox_call(
        "sbx-1",
        Method::Post,
        sandbox_action(&cfg, "sbx-1", "suspend"),
        RequestBody::Empty,
    );
    let err = block_on(Api::new(&fake, &cfg).request_json(&call)).unwrap_err();
    assert_eq!(err.class_name(), "SandboxNotFoundError");
    assert_eq!(fake.sent().len(), 2, "a 503 is retried");
}

#[test]
fn the_trace_of_the_last_successful_request_is_kept_for_the_result() {
    let _ = crate::trace::take_success();
    let fake = Fake::new(vec![Scripted::json(
        200,
        r#"{"id":"sbx-1","status":"running"}"#,
    )]);
    let cfg = config();
    block_on(Api::new(&fake, &cfg).get_sandbox("sbx-1")).unwrap();
    let sent = fake.sent();
    let trace = crate::trace::take_success().unwrap();
    assert!(sent[0].traceparent.contains(&trace));
    assert_eq!(crate::trace::take_success(), None);
    let fake = Fake::new(vec![Scripted::status(400, "bad")]);
    assert!(block_on(Api::new(&fake, &cfg).get_sandbox("sbx-1")).is_err());
    assert_eq!(crate::trace::take_success(), None);
}
