use super::*;
use crate::testing::{block_on, config, Fake, Scripted};

const SNAPSHOT_POST: &str = "/v1/namespaces/default/sandboxes/sbx-1/snapshot";

fn snapshot_json(id: &str, sandbox: &str, status: &str, created_at: f64) -> String {
    format!(
        r#"{{"id":"{id}","namespace":"default","sandbox_id":"{sandbox}","status":"{status}","created_at":{created_at}}}"#
    )
}

#[test]
fn ambiguous_snapshot_failure_returns_the_snapshot_it_created() {
    for failure in [
        Scripted::status(502, "bad gateway"),
        Scripted::network("connection reset"),
        Scripted::timeout(),
        Scripted::json(202, "<html>"),
    ] {
        let fake = Fake::with_handler(move |req, now| {
            if req.url.ends_with(SNAPSHOT_POST) {
                return failure.clone();
            }
            let list = format!(
                r#"{{"snapshots":[{},{},{},{}]}}"#,
                snapshot_json("old", "sbx-1", "completed", now - 3_600_000.0),
                snapshot_json("seconds-ago", "sbx-1", "completed", now - 1_000.0),
                snapshot_json("mine", "sbx-1", "in_progress", now),
                snapshot_json("other-sandbox", "sbx-2", "in_progress", now),
            );
            Scripted::json(200, &list)
        });
        let cfg = config();
        let created = block_on(Api::new(&fake, &cfg).create_snapshot("sbx-1", None)).unwrap();
        assert_eq!(created.snapshot_id, "mine");
        let posts = fake
            .sent()
            .iter()
            .filter(|r| r.url.ends_with(SNAPSHOT_POST))
            .count();
        assert_eq!(posts, 1, "the POST is never repeated");
    }
}

#[test]
fn a_server_clock_ahead_of_ours_does_not_pass_an_old_snapshot_off_as_new() {
    // The server's clock is 5 minutes ahead (a laptop with a wrong clock): its snapshot of a
    // minute ago has a created_at after the call began by our clock. The POST created nothing.
    let fake = Fake::with_handler(|req, now| {
        if req.url.ends_with(SNAPSHOT_POST) {
            return Scripted::status(503, "unavailable");
        }
        let server_now = now + 300_000.0;
        let list = format!(r#"{{"snapshots":[{}]}}"#, snapshot_json("a-minute-old", "sbx-1", "completed", server_now - 60_000.0));
        Scripted::json(200, &list)
    });
    let cfg = config();
    let err = block_on(Api::new(&fake, &cfg).create_snapshot("sbx-1", None)).unwrap_err();
    assert!(err.message().contains("outcome unknown"), "{}", err.message());
}

#[test]
fn ambiguous_failure_with_nothing_found_says_the_outcome_is_unknown() {
    let fake = Fake::with_handler(|req, now| {
        if req.url.ends_with(SNAPSHOT_POST) {
            return Scripted::status(503, "unavailable");
        }
        Scripted::json(
            200,
            &format!(
                r#"{{"snapshots":[{}]}}"#,
                snapshot_json("old", "sbx-1", "completed", now - 60_000.0)
            ),
        )
    });
    let cfg = config();
    let err = block_on(Api::new(&fake, &cfg).create_snapshot("sbx-1", None)).unwrap_err();
    assert_eq!(err.class_name(), "RemoteAPIError");
    assert!(
        err.message().contains("outcome unknown"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("503"));
}

#[test]
fn a_delete_whose_first_attempt_was_applied_resolves() {
    let cfg = config();
    for first in [Scripted::network("connection reset"), Scripted::status(502, "bad gateway"), Scripted::status(503, "unavailable")] {
        let fake = Fake::new(vec![first.clone(), Scripted::status(404, "Snapshot not found: snap-1")]);
        block_on(Api::new(&fake, &cfg).delete_snapshot("snap-1")).unwrap();
        assert_eq!(fake.sent().len(), 2);
        let fake = Fake::new(vec![first, Scripted::status(404, "Sandbox not found: sbx-1")]);
        block_on(Api::new(&fake, &cfg).delete_sandbox("sbx-1")).unwrap();
    }
    // A 404 with no earlier doubt, or after a 429 (which guarantees nothing happened), is real.
    let fake = Fake::new(vec![Scripted::status(404, "Snapshot not found: snap-1")]);
    let err = block_on(Api::new(&fake, &cfg).delete_snapshot("snap-1")).unwrap_err();
    assert_eq!(err.class_name(), "SnapshotNotFoundError");
    let fake = Fake::new(vec![Scripted::status(429, "slow down"), Scripted::status(404, "Snapshot not found")]);
    let err = block_on(Api::new(&fake, &cfg).delete_snapshot("snap-1")).unwrap_err();
    assert_eq!(err.class_name(), "SnapshotNotFoundError");
}

#[test]
fn ambiguous_creates_and_runs_say_the_outcome_is_unknown() {
    let cfg = config();
    let spec = crate::routes::SandboxSpec::default();
    for failure in [Scripted::network("connection reset"), Scripted::status(500, "oops"), Scripted::timeout(), Scripted::json(200, "<html>")] {
        let fake = Fake::new(vec![failure.clone()]);
        let err = block_on(Api::new(&fake, &cfg).create_sandbox(&spec)).unwrap_err();
        assert!(err.message().contains("outcome unknown"), "{}", err.message());
        assert_eq!(fake.sent().len(), 1, "a create is never repeated");
    }
    let fake = Fake::new(vec![Scripted::status(400, "bad image")]);
    let err = block_on(Api::new(&fake, &cfg).create_sandbox(&spec)).unwrap_err();
    assert!(!err.message().contains("outcome unknown"), "a 400 is definite: {}", err.message());

    let target = SandboxTarget { sandbox_id: "sbx-1".into(), base: "http://127.0.0.1:8900".into() };
    let run = crate::routes::RunSpec { command: "true".into(), ..Default::default() };
    for failure in [Scripted::network("connection reset"), Scripted::status(502, "bad gateway"), Scripted::json(200, "<html>")] {
        let fake = Fake::new(vec![failure]);
        let err = block_on(Api::new(&fake, &cfg).run(&target, &run)).unwrap_err();
        assert!(err.message().contains("outcome unknown"), "{}", err.message());
    }
}

#[test]
fn a_call_deadline_bounds_the_snapshot_request_and_its_recovery() {
    // A server that never answers: the POST and the recovery listing both time out.
    let fake = Fake::with_handler(|_, _| Scripted::timeout());
    let cfg = config();
    let start = crate::platform::Platform::now_ms(&fake);
    let err = block_on(Api::new(&fake, &cfg).until(start + 1_000.0).create_snapshot("sbx-1", None)).unwrap_err();
    assert!(err.message().contains("outcome unknown"), "{}", err.message());
    let spent = crate::platform::Platform::now_ms(&fake) - start;
    assert!(spent <= 1_000.0 + crate::call::MIN_ATTEMPT_MS, "took {spent} ms of a 1 s budget");
    assert_eq!(fake.sent().len(), 2, "one POST, one recovery listing");

    // createAndConnect's startupTimeout bounds its create the same way.
    let fake = Fake::with_handler(|_, _| Scripted::timeout());
    let start = crate::platform::Platform::now_ms(&fake);
    let spec = crate::routes::SandboxSpec::default();
    block_on(Api::new(&fake, &cfg).start_sandbox(&spec, 1_000.0, &mut None)).unwrap_err();
    let spent = crate::platform::Platform::now_ms(&fake) - start;
    assert!(spent <= 1_000.0 + crate::call::MIN_ATTEMPT_MS, "took {spent} ms of a 1 s startup budget");
}

#[test]
fn definite_failures_are_not_second_guessed() {
    let fake = Fake::new(vec![Scripted::status(
        400,
        "Sandbox is already being snapshotted",
    )]);
    let cfg = config();
    let err =
        block_on(Api::new(&fake, &cfg).create_snapshot("sbx-1", Some("memory"))).unwrap_err();
    assert_eq!(fake.sent().len(), 1, "no recovery listing for a 400");
    assert!(err.message().contains("already being snapshotted"));
    assert_eq!(
        fake.sent()[0].body,
        RequestBody::Json(r#"{"snapshot_type":"memory"}"#.into())
    );

    let fake = Fake::new(vec![Scripted::status(404, "Sandbox not found")]);
    let err = block_on(Api::new(&fake, &cfg).create_snapshot("nope", None)).unwrap_err();
    assert_eq!(err.class_name(), "SandboxNotFoundError");
    assert_eq!(
        fake.sent()[0].body,
        RequestBody::Empty,
        "no type means no body at all"
    );
}

#[test]
fn list_filters_by_sandbox() {
    let fake = Fake::new(vec![Scripted::json(
        200,
        &format!(
            r#"{{"snapshots":[{},{}]}}"#,
            snapshot_json("a", "sbx-1", "completed", 1.0),
            snapshot_json("b", "sbx-2", "completed", 1.0)
        ),
    )]);
    let cfg = config();
    let list = block_on(Api::new(&fake, &cfg).list_snapshots(Some("sbx-2"))).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].snapshot_id, "b");
}

#[test]
fn malformed_success_bodies_are_typed_errors() {
    let cfg = config();
    for body in [
        "<!doctype html><p>maintenance</p>",
        r#"{"id":"s","stat"#,
        r#"{"status":"completed"}"#,
    ] {
        let fake = Fake::new(vec![Scripted::json(200, body)]);
        let err = block_on(Api::new(&fake, &cfg).get_snapshot(
            "s",
            Budget {
                deadline_ms: f64::MAX,
                max_retries: 0,
            },
        ))
        .unwrap_err();
        assert_eq!(err.class_name(), "SandboxError", "{body}");
        assert!(
            err.message().starts_with(
                "Invalid response to GET /v1/namespaces/default/snapshots/s (status 200"
            ),
            "{}",
            err.message()
        );
        assert!(err.trace_id().is_some());
    }
}

#[test]
fn start_sandbox_polls_until_running() {
    let mut gets = 0;
    let fake = Fake::with_handler(move |req, _| match req.method {
        Method::Post => Scripted::json(200, r#"{"sandbox_id":"sbx-9","status":"pending"}"#),
        _ => {
            gets += 1;
            let status = if gets < 3 { "pending" } else { "running" };
            Scripted::json(
                200,
                &format!(
                    r#"{{"id":"sbx-9","namespace":"default","status":"{status}","sandbox_url":"http://127.0.0.1:8900"}}"#
                ),
            )
        }
    });
    let cfg = config();
    let rec = block_on(Api::new(&fake, &cfg).start_sandbox(&SandboxSpec::default(), 10_000.0, &mut None))
        .unwrap();
    assert_eq!(rec.status, "running");
    assert_eq!(fake.sleeps(), vec![500.0, 500.0, 500.0]);
}

#[test]
fn start_sandbox_reports_termination_and_deletes_on_timeout() {
    let fake = Fake::new(vec![Scripted::json(
        200,
        r#"{"sandbox_id":"sbx-9","status":"terminated","error_details":{"message":"image not found"}}"#,
    )]);
    let cfg = config();
    let err = block_on(Api::new(&fake, &cfg).start_sandbox(&SandboxSpec::default(), 10_000.0, &mut None))
        .unwrap_err();
    assert_eq!(
        err.message(),
        "Sandbox sbx-9 became terminated during startup: image not found"
    );

    let fake = Fake::with_handler(|req, _| match req.method {
        Method::Delete => Scripted::status(200, ""),
        _ => Scripted::json(
            200,
            r#"{"id":"sbx-9","sandbox_id":"sbx-9","status":"pending"}"#,
        ),
    });
    let err = block_on(Api::new(&fake, &cfg).start_sandbox(&SandboxSpec::default(), 1_200.0, &mut None))
        .unwrap_err();
    assert!(
        err.message()
            .starts_with("Sandbox sbx-9 did not start within 1.2s"),
        "{}",
        err.message()
    );
    assert_eq!(fake.sent().last().unwrap().method, Method::Delete);
}

#[test]
fn restore_from_an_unknown_snapshot_is_snapshot_not_found() {
    let fake = Fake::new(vec![Scripted::status(404, "Snapshot not found")]);
    let cfg = config();
    let spec = SandboxSpec {
        snapshot_id: Some("ghost".into()),
        ..Default::default()
    };
    let err = block_on(Api::new(&fake, &cfg).create_sandbox(&spec)).unwrap_err();
    assert_eq!(err.class_name(), "SnapshotNotFoundError");
}

#[test]
fn run_sends_to_the_sandbox_and_folds_the_stream() {
    let fake = Fake::new(vec![Scripted::Reply {
        status: 200,
        body: "data: {\"pid\":1}\n\ndata: {\"line\":\"a,b\",\"timestamp\":1}\n\ndata: {\"exit_code\":0}\n\n".into(),
        retry_after: None,
        content_type: Some("text/event-stream".into()),
    }]);
    let cfg = config();
    let target = SandboxTarget {
        sandbox_id: "sbx-1".into(),
        base: "http://127.0.0.1:8900".into(),
    };
    let spec = RunSpec {
        command: "sh".into(),
        args: vec!["-c".into(), "cat /data/output.csv".into()],
        ..Default::default()
    };
    let out = block_on(Api::new(&fake, &cfg).run(&target, &spec)).unwrap();
    assert_eq!((out.exit_code, out.stdout.as_str()), (0.0, "a,b"));
    let sent = &fake.sent()[0];
    assert_eq!(sent.url, "http://127.0.0.1:8900/api/v1/processes/run");
    assert_eq!(sent.header("X-Tensorlake-Sandbox-Id"), Some("sbx-1"));
    assert_eq!(sent.header("Accept"), Some("text/event-stream"));

    let fake = Fake::new(vec![Scripted::json(200, "{}")]);
    let err = block_on(Api::new(&fake, &cfg).run(&target, &spec)).unwrap_err();
    assert!(err
        .message()
        .contains("expected a text/event-stream response"));
}

#[test]
fn a_refused_connection_is_a_definite_failure_and_a_create_is_sent_again() {
    let cfg = config();
    let spec = crate::routes::SandboxSpec::default();
    // Nothing was sent, so a create may go again, and succeeds the second time.
    let fake = Fake::new(vec![
        Scripted::Refused,
        Scripted::json(200, r#"{"sandbox_id":"sbx-1","status":"pending"}"#),
    ]);
    let created = block_on(Api::new(&fake, &cfg).create_sandbox(&spec)).unwrap();
    assert_eq!(created.sandbox_id, "sbx-1");
    assert_eq!(fake.sent().len(), 2);

    // Refused every time: a plain connection error, not "outcome unknown", and no recovery
    // listing for a snapshot (nothing can have been created).
    let fake = Fake::new(vec![Scripted::Refused; 10]);
    let err = block_on(Api::new(&fake, &cfg).create_sandbox(&spec)).unwrap_err();
    assert_eq!(err.class_name(), "SandboxConnectionError");
    assert!(!err.message().contains("outcome unknown"), "{}", err.message());
    let fake = Fake::new(vec![Scripted::Refused; 10]);
    let err = block_on(Api::new(&fake, &cfg).create_snapshot("sbx-1", None)).unwrap_err();
    assert!(!err.message().contains("outcome unknown"), "{}", err.message());
    assert!(fake.sent().iter().all(|r| r.url.ends_with(SNAPSHOT_POST)), "no recovery listing");
    let run = crate::routes::RunSpec { command: "true".into(), ..Default::default() };
    let target = SandboxTarget { sandbox_id: "sbx-1".into(), base: "http://127.0.0.1:8900".into() };
    let fake = Fake::new(vec![Scripted::Refused; 10]);
    let err = block_on(Api::new(&fake, &cfg).run(&target, &run)).unwrap_err();
    assert!(!err.message().contains("outcome unknown"), "{}", err.message());
}

#[test]
fn a_refused_retry_after_an_ambiguous_attempt_still_says_the_outcome_is_unknown() {
    // A 502 (the request may have been applied), then refusals: the last attempt sent nothing,
    // but the call as a whole may have taken effect, so the error must not say nothing was sent.
    let cfg = config();
    let fake = Fake::new(vec![Scripted::status(502, "bad gateway"), Scripted::Refused, Scripted::Refused, Scripted::Refused]);
    let err = block_on(Api::new(&fake, &cfg).delete_snapshot("snap-1")).unwrap_err();
    match err {
        Error::Connection(conn) => assert!(!conn.nothing_sent, "the 502'd attempt may have been applied"),
        other => panic!("expected a connection error, got {}", other.message()),
    }
}
