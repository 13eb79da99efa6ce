use super::*;
use crate::testing::{block_on, config, Fake, Scripted};

fn get_call() -> Call {
    Call::new(
        Method::Get,
        "http://127.0.0.1:8900/v1/namespaces/default/snapshots/s".into(),
        RetryClass::Idempotent,
    )
}

#[test]
fn retries_reads_on_transient_statuses_then_succeeds() {
    let fake = Fake::new(vec![
        Scripted::status(503, ""),
        Scripted::status(429, "slow down").retry_after("1"),
        Scripted::network("socket hang up"),
        Scripted::json(200, r#"{"ok":true}"#),
    ]);
    let cfg = config();
    let reply = block_on(send(
        &fake,
        &cfg,
        &get_call(),
        Budget::standard(&fake, &cfg),
    ))
    .unwrap();
    assert_eq!(reply.response.status, 200);
    let sent = fake.sent();
    assert_eq!(sent.len(), 4);
    let sleeps = fake.sleeps();
    assert_eq!(sleeps.len(), 3);
    assert_eq!(sleeps[1], 1000.0, "Retry-After is honoured exactly");
    assert!(
        sleeps[0] <= 250.0 && sleeps[2] <= 1000.0,
        "backoff stays under its ceiling: {sleeps:?}"
    );
    let traces: std::collections::HashSet<_> =
        sent.iter().map(|r| r.traceparent.clone()).collect();
    assert_eq!(traces.len(), 4, "every attempt carries a fresh traceparent");
}

#[test]
fn gives_up_after_max_retries_with_the_last_error() {
    let fake = Fake::new(vec![
        Scripted::status(
            502,
            "<html><title>Bad Gateway</title></html>"
        );
        5
    ]);
    let cfg = config(); // max_retries = 3
    let err = block_on(send(
        &fake,
        &cfg,
        &get_call(),
        Budget::standard(&fake, &cfg),
    ))
    .unwrap_err();
    assert_eq!(fake.sent().len(), 4);
    let Error::Api(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status, 502);
    assert_eq!(api.response_message, "Bad Gateway (HTML error page)");
    assert!(api.retryable);
    assert_eq!(
        err.trace_id(),
        Some(fake.sent()[3].traceparent.get(3..35).unwrap())
    );
}

#[test]
fn does_not_retry_final_statuses() {
    for status in [400, 401, 404, 500] {
        let fake = Fake::new(vec![
            Scripted::status(status, "nope"),
            Scripted::json(200, "{}"),
        ]);
        let cfg = config();
        let err = block_on(send(
            &fake,
            &cfg,
            &get_call(),
            Budget::standard(&fake, &cfg),
        ))
        .unwrap_err();
        assert_eq!(fake.sent().len(), 1, "{status}");
        assert_eq!(err.class_name(), "RemoteAPIError");
    }
}

#[test]
fn creates_are_retried_on_429_only() {
    let mut call = get_call();
    call.method = Method::Post;
    call.class = RetryClass::Create;
    let fake = Fake::new(vec![
        Scripted::status(429, "").retry_after("0"),
        Scripted::status(503, ""),
        Scripted::json(202, "{}"),
    ]);
    let cfg = config();
    let err = block_on(send(&fake, &cfg, &call, Budget::standard(&fake, &cfg))).unwrap_err();
    assert_eq!(fake.sent().len(), 2, "429 retried, 503 reported");
    assert_eq!(format!("{err:?}"), "RemoteAPIError: API error (status 503) on POST /v1/namespaces/default/snapshots/s: the server sent no message");

    let fake = Fake::new(vec![
        Scripted::network("ECONNRESET"),
        Scripted::json(202, "{}"),
    ]);
    let err = block_on(send(&fake, &cfg, &call, Budget::standard(&fake, &cfg))).unwrap_err();
    assert_eq!(
        fake.sent().len(),
        1,
        "a lost connection on a create is never repeated blindly"
    );
    assert_eq!(err.class_name(), "SandboxConnectionError");
}

#[test]
fn retry_after_past_the_deadline_fails_now_instead_of_sleeping() {
    let fake = Fake::new(vec![
        Scripted::status(429, "").retry_after("3600"),
        Scripted::json(200, "{}"),
    ]);
    let cfg = config();
    let err = block_on(send(
        &fake,
        &cfg,
        &get_call(),
        Budget {
            deadline_ms: fake.now_ms() + 10_000.0,
            max_retries: 3,
        },
    ))
    .unwrap_err();
    assert_eq!(fake.sent().len(), 1);
    assert!(fake.sleeps().is_empty());
    assert_eq!(err.retry_after_ms(), Some(3_600_000.0));
}

#[test]
fn not_found_is_typed_only_where_the_route_says_what_was_missing() {
    let mut call = get_call();
    call.not_found = Some(NotFound::Snapshot("s".into()));
    let fake = Fake::new(vec![Scripted::status(404, "Snapshot not found: s")]);
    let cfg = config();
    let err = block_on(send(&fake, &cfg, &call, Budget::standard(&fake, &cfg))).unwrap_err();
    assert_eq!(err.class_name(), "SnapshotNotFoundError");
    assert_eq!(err.message(), "Snapshot not found: s");
}

#[test]
fn attempts_are_bounded_by_the_request_timeout_and_the_deadline() {
    let cfg = config();
    let fake = Fake::new(vec![Scripted::json(200, "{}")]);
    block_on(send(
        &fake,
        &cfg,
        &get_call(),
        Budget::standard(&fake, &cfg),
    ))
    .unwrap();
    assert_eq!(
        fake.sent()[0].timeout_ms,
        300_000.0,
        "the configured request timeout"
    );
    let fake = Fake::new(vec![Scripted::json(200, "{}")]);
    block_on(send(
        &fake,
        &cfg,
        &get_call(),
        Budget {
            deadline_ms: fake.now_ms() + 2_000.0,
            max_retries: 1,
        },
    ))
    .unwrap();
    assert_eq!(fake.sent()[0].timeout_ms, 2_000.0, "capped by the deadline");
    let fake = Fake::new(vec![Scripted::timeout(), Scripted::json(200, "{}")]);
    let err = block_on(send(
        &fake,
        &cfg,
        &get_call(),
        Budget {
            deadline_ms: fake.now_ms() + 2_000.0,
            max_retries: 3,
        },
    ))
    .unwrap_err();
    assert_eq!(
        fake.sent().len(),
        1,
        "no retry once the deadline has passed"
    );
    let Error::Connection(conn) = err else {
        panic!()
    };
    assert!(conn.timed_out);
    let fake = Fake::new(vec![Scripted::json(200, "{}")]);
    block_on(send(
        &fake,
        &cfg,
        &get_call(),
        Budget {
            deadline_ms: fake.now_ms(),
            max_retries: 0,
        },
    ))
    .unwrap();
    assert_eq!(fake.sent()[0].timeout_ms, MIN_ATTEMPT_MS);
}

#[test]
fn every_attempt_carries_the_documented_headers() {
    let fake = Fake::new(vec![Scripted::json(200, "{}")]);
    let cfg = config();
    let mut call = get_call();
    call.method = Method::Post;
    call.body = RequestBody::Json("{}".into());
    call.accept = Some("text/event-stream");
    call.sandbox_id = Some("sbx-1".into());
    block_on(send(&fake, &cfg, &call, Budget::standard(&fake, &cfg))).unwrap();
    let sent = &fake.sent()[0];
    let traceparent = sent.header("traceparent").unwrap();
    assert!(traceparent.starts_with("00-") && traceparent.ends_with("-01") && traceparent.len() == 55, "{traceparent}");
    assert_eq!(sent.header("X-Tensorlake-Request-Timeout-Ms"), Some("300000"));
    assert_eq!(sent.header("Content-Type"), Some("application/json"));
    assert_eq!(sent.header("Accept"), Some("text/event-stream"));
    assert_eq!(sent.header("X-Tensorlake-Sandbox-Id"), Some("sbx-1"));
    assert_eq!(sent.header("X-Forwarded-Organization-Id"), None, "no scope headers without both ids");

    let fake = Fake::new(vec![Scripted::json(200, "{}")]);
    let mut scoped = config();
    scoped.scope = Some(("org-1".into(), "proj-1".into()));
    block_on(send(&fake, &scoped, &get_call(), Budget::standard(&fake, &scoped))).unwrap();
    let sent = &fake.sent()[0];
    assert_eq!(sent.header("X-Forwarded-Organization-Id"), Some("org-1"));
    assert_eq!(sent.header("X-Forwarded-Project-Id"), Some("proj-1"));
    assert_eq!(sent.header("Content-Type"), None, "an empty body has no content type");
}

#[test]
fn only_a_prefix_of_a_huge_error_page_is_read() {
    let page = format!("<html>{}</html>", "x".repeat(5_000_000));
    let fake = Fake::new(vec![Scripted::status(400, &page)]);
    let cfg = config();
    let call = Call::new(Method::Get, "http://127.0.0.1:8900/v1/x".into(), RetryClass::Idempotent);
    let err = block_on(send(&fake, &cfg, &call, Budget::standard(&fake, &cfg))).unwrap_err();
    let Error::Api(api) = err else { panic!("an API error") };
    assert!(api.response_message.len() <= ERROR_BODY_MAX_CHARS, "{} chars", api.response_message.len());
}

#[test]
fn servers_echoing_secrets_are_redacted() {
    let fake = Fake::new(vec![Scripted::status(401, "bad token tl_apiKey_SECRET")])
        .with_secret("tl_apiKey_SECRET");
    let cfg = config();
    let err = block_on(send(
        &fake,
        &cfg,
        &get_call(),
        Budget::standard(&fake, &cfg),
    ))
    .unwrap_err();
    assert!(!format!("{err:?}").contains("SECRET"), "{err:?}");
}
