use super::*;
use crate::testing::{block_on, config, Fake, Scripted};

fn snapshot(status: &str) -> Scripted {
    Scripted::json(
        200,
        &format!(
            r#"{{"id":"snap-1","sandbox_id":"sbx-1","status":"{status}","created_at":1796040000000}}"#
        ),
    )
}

fn failed(error: &str) -> Scripted {
    Scripted::json(
        200,
        &format!(r#"{{"id":"snap-1","status":"failed","error":"{error}"}}"#),
    )
}

fn spec(timeout_s: f64, until: &str) -> WaitSpec {
    WaitSpec::new("snap-1", Some(timeout_s), Some(1.0), Some(until)).unwrap()
}

fn run(fake: &Fake, spec: WaitSpec) -> (Result<String, Error<Fake>>, Vec<String>) {
    let cfg = config();
    let api = Api::new(fake, &cfg);
    let mut waiter = Waiter::new(spec, fake.now_ms());
    let mut seen = Vec::new();
    let result = block_on(wait_for(&api, &mut waiter, |rec| {
        seen.push(rec.status.as_str().unwrap().to_string());
        Ok(())
    }));
    (result.map(|r| r.status.as_str().unwrap().to_string()), seen)
}

#[test]
fn judges_statuses_like_the_sdks() {
    assert_eq!(
        judge("local_ready", WaitUntil::LocalReady),
        Verdict::Reached
    );
    assert_eq!(judge("completed", WaitUntil::LocalReady), Verdict::Reached);
    assert_eq!(judge("local_ready", WaitUntil::Completed), Verdict::Pending);
    assert_eq!(judge("failed", WaitUntil::Completed), Verdict::Failed);
    assert_eq!(judge("replicating", WaitUntil::Completed), Verdict::Pending);
    assert_eq!(judge("deleting", WaitUntil::Completed), Verdict::Deleting);
}

#[test]
fn polls_at_once_then_every_interval_reporting_each_change_once() {
    let fake = Fake::new(vec![
        snapshot("in_progress"),
        snapshot("in_progress"),
        snapshot("local_ready"),
        snapshot("completed"),
    ]);
    let (result, seen) = run(&fake, spec(300.0, "completed"));
    assert_eq!(result.unwrap(), "completed");
    assert_eq!(seen, vec!["in_progress", "local_ready", "completed"]);
    assert_eq!(
        fake.sleeps(),
        vec![1000.0, 1000.0, 1000.0],
        "first poll at once, then one per interval"
    );
    assert!(
        fake.sent()
            .iter()
            .all(|r| r.url.ends_with("/snapshots/snap-1")),
        "polls the snapshot, never the sandbox"
    );
}

#[test]
fn local_ready_is_the_default_target() {
    let fake = Fake::new(vec![
        snapshot("in_progress"),
        snapshot("local_ready"),
        snapshot("completed"),
    ]);
    let cfg = config();
    let api = Api::new(&fake, &cfg);
    let spec = WaitSpec::new("snap-1", None, None, None).unwrap();
    assert_eq!(
        (spec.timeout_s, spec.poll_interval_ms, spec.until),
        (300.0, 1000.0, WaitUntil::LocalReady)
    );
    let rec = block_on(wait_for(
        &api,
        &mut Waiter::new(spec, fake.now_ms()),
        |_| Ok(()),
    ))
    .unwrap();
    assert_eq!(rec.status, "local_ready");
    assert_eq!(fake.sent().len(), 2);
}

#[test]
fn failure_is_reported_as_a_change_then_raised_with_the_servers_message() {
    let fake = Fake::new(vec![snapshot("in_progress"), failed("disk full")]);
    let (result, seen) = run(&fake, spec(300.0, "local_ready"));
    let err = result.unwrap_err();
    assert_eq!(seen, vec!["in_progress", "failed"]);
    assert_eq!(err.class_name(), "SnapshotFailedError");
    assert_eq!(err.message(), "Snapshot snap-1 failed: disk full");
    let Error::SnapshotFailed {
        snapshot, trace_id, ..
    } = &err
    else {
        unreachable!()
    };
    assert_eq!(snapshot.error.as_ref().unwrap(), "disk full");
    assert_eq!(trace_id.len(), 32);
}

#[test]
fn the_deadline_keeps_to_the_poll_with_a_final_poll_at_the_deadline() {
    let fake = Fake::new(vec![snapshot("in_progress"); 10]);
    let (result, _) = run(&fake, spec(2.5, "local_ready"));
    let err = result.unwrap_err();
    assert_eq!(err.class_name(), "WaitTimeoutError");
    assert_eq!(
        err.message(),
        "Snapshot snap-1 did not reach local_ready within 2.5s (last status in_progress)"
    );
    let sleeps = fake.sleeps();
    assert_eq!(sleeps.len(), 3);
    assert!(
        (sleeps[2] - 497.0).abs() < 1e-6,
        "the last sleep is cut to the time left: {sleeps:?}"
    );
    assert_eq!(fake.sent().len(), 4, "polls at 0, 1, 2 and at the deadline");
}

#[test]
fn a_zero_timeout_checks_exactly_once() {
    let fake = Fake::new(vec![snapshot("in_progress"), snapshot("completed")]);
    let (result, _) = run(&fake, spec(0.0, "local_ready"));
    assert_eq!(result.unwrap_err().class_name(), "WaitTimeoutError");
    assert_eq!(fake.sent().len(), 1);
}

#[test]
fn retryable_poll_failures_do_not_end_the_wait_and_retry_after_is_respected() {
    let fake = Fake::new(vec![
        snapshot("in_progress"),
        Scripted::status(503, "busy").retry_after("4"),
        Scripted::network("connection reset"),
        Scripted::status(502, ""),
        snapshot("local_ready"),
    ]);
    let (result, seen) = run(&fake, spec(300.0, "local_ready"));
    assert_eq!(result.unwrap(), "local_ready");
    assert_eq!(seen, vec!["in_progress", "local_ready"]);
    assert_eq!(fake.sleeps(), vec![1000.0, 4000.0, 1000.0, 1000.0]);
    assert_eq!(
        fake.sent().len(),
        5,
        "one request per poll: the waiter is the retry loop"
    );
}

#[test]
fn a_timeout_after_failing_polls_says_what_went_wrong() {
    let fake = Fake::new(vec![Scripted::status(503, "maintenance"); 10]);
    let (result, _) = run(&fake, spec(1.0, "local_ready"));
    let msg = result.unwrap_err().message();
    assert!(
        msg.contains("no status was seen") && msg.contains("maintenance"),
        "{msg}"
    );
}

#[test]
fn final_errors_end_the_wait_at_once() {
    let fake = Fake::new(vec![
        Scripted::status(404, "Snapshot not found: snap-1"),
        snapshot("completed"),
    ]);
    let (result, _) = run(&fake, spec(300.0, "local_ready"));
    assert_eq!(result.unwrap_err().class_name(), "SnapshotNotFoundError");
    assert_eq!(fake.sent().len(), 1);
}

#[test]
fn an_abort_during_a_sleep_ends_the_wait_without_another_poll() {
    let fake = Fake::new(vec![snapshot("in_progress"); 5]);
    fake.abort_at_sleep.set(Some(1));
    let (result, seen) = run(&fake, spec(300.0, "local_ready"));
    assert!(matches!(result, Err(Error::Aborted)));
    assert_eq!(seen, vec!["in_progress"]);
    assert_eq!(fake.sent().len(), 2);
}

#[test]
fn an_observer_error_ends_the_wait_with_that_error() {
    let fake = Fake::new(vec![snapshot("in_progress"), snapshot("local_ready")]);
    let cfg = config();
    let api = Api::new(&fake, &cfg);
    let mut waiter = Waiter::new(spec(300.0, "local_ready"), fake.now_ms());
    let result = block_on(wait_for(&api, &mut waiter, |_| {
        Err(Error::Callback("boom".into()))
    }));
    assert!(matches!(result, Err(Error::Callback(ref c)) if c == "boom"));
    assert_eq!(fake.sent().len(), 1);
}

#[test]
fn next_change_yields_each_change_then_ends() {
    let fake = Fake::new(vec![snapshot("in_progress"), snapshot("local_ready")]);
    let cfg = config();
    let api = Api::new(&fake, &cfg);
    let mut waiter = Waiter::new(spec(300.0, "local_ready"), fake.now_ms());
    assert_eq!(
        block_on(waiter.next_change(&api)).unwrap().unwrap().status,
        "in_progress"
    );
    assert_eq!(
        block_on(waiter.next_change(&api)).unwrap().unwrap().status,
        "local_ready"
    );
    assert!(block_on(waiter.next_change(&api)).unwrap().is_none());
    assert_eq!(fake.sent().len(), 2);
}

#[test]
fn bad_wait_options_are_rejected_before_any_request() {
    assert_eq!(
        WaitSpec::new("", None, None, None).unwrap_err().param,
        "snapshotId"
    );
    assert_eq!(
        WaitSpec::new("s", Some(-1.0), None, None)
            .unwrap_err()
            .param,
        "timeout"
    );
    assert_eq!(
        WaitSpec::new("s", Some(f64::NAN), None, None)
            .unwrap_err()
            .param,
        "timeout"
    );
    assert_eq!(
        WaitSpec::new("s", None, Some(0.0), None).unwrap_err().param,
        "pollInterval"
    );
    let err = WaitSpec::new("s", None, None, Some("done")).unwrap_err();
    assert!(err.is_range && err.param == "waitUntil");
}
