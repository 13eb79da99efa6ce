//! Every fault-injection mode of `POST /_admin/faults`, plus the rest of the admin API.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::{json, Value};

const P: &str = "/v1/namespaces/default";

fn fault(s: &Server, spec: Value) -> String {
    let r = s.post_json("/_admin/faults", &spec);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

fn snapshot_count(s: &Server) -> usize {
    s.get(&format!("{P}/snapshots")).json()["snapshots"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn status_with_retry_after_for_the_next_n_matching_requests() {
    let s = Server::start(&[]);
    fault(
        &s,
        json!({"method": "GET", "path": "/v1/namespaces/*/snapshots", "count": 2, "status": 429, "retry_after": "2", "body": "slow down"}),
    );
    // Not matching: another method, another path.
    assert_eq!(s.get(&format!("{P}/sandboxes")).status, 200);
    for _ in 0..2 {
        let r = s.get(&format!("{P}/snapshots"));
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("2"));
        assert_eq!(r.text(), "slow down");
        assert!(r.content_type().starts_with("text/plain"));
    }
    assert_eq!(
        s.get(&format!("{P}/snapshots")).status,
        200,
        "count exhausted"
    );
    assert_eq!(s.get("/_admin/faults").json()["faults"], json!([]));

    for status in [500, 502, 503, 504] {
        fault(&s, json!({"path": "/snapshots", "status": status}));
        let r = s.get("/snapshots");
        assert_eq!(r.status, status);
        assert!(r.text().contains(&status.to_string()));
    }
    // An HTTP date is passed through verbatim.
    fault(
        &s,
        json!({"path": "*", "status": 503, "retry_after": "Wed, 21 Oct 2026 07:28:00 GMT"}),
    );
    assert_eq!(
        s.get("/snapshots").header("retry-after"),
        Some("Wed, 21 Oct 2026 07:28:00 GMT")
    );
}

#[test]
fn a_scripted_status_has_no_effect_unless_after() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    fault(
        &s,
        json!({"method": "POST", "path": "/v1/namespaces/*/sandboxes/*/snapshot", "status": 502}),
    );
    let r = s.post_empty(&format!("{P}/sandboxes/{sb}/snapshot"));
    assert_eq!(r.status, 502);
    assert_eq!(
        snapshot_count(&s),
        0,
        "without `after` the request is not handled"
    );

    fault(
        &s,
        json!({"method": "POST", "path": "/v1/namespaces/*/sandboxes/*/snapshot", "status": 502, "after": true}),
    );
    let r = s.post_empty(&format!("{P}/sandboxes/{sb}/snapshot"));
    assert_eq!(r.status, 502);
    assert_eq!(
        snapshot_count(&s),
        1,
        "with `after` the snapshot exists although the client saw a 502"
    );
}

#[test]
fn drop_closes_the_connection_mid_body() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    fault(
        &s,
        json!({"path": "/v1/namespaces/default/snapshots", "drop": true}),
    );
    let r = s.get(&format!("{P}/snapshots"));
    assert_eq!(r.status, 200, "the status line and headers were sent");
    assert!(!r.complete, "the body must be cut short");
    let declared: usize = r.header("content-length").unwrap().parse().unwrap();
    assert!(r.body.len() < declared);

    // drop + after: the snapshot is created, the client sees a network error.
    fault(
        &s,
        json!({"method": "POST", "path": "*/snapshot", "drop": true, "after": true}),
    );
    let r = s.post_empty(&format!("{P}/sandboxes/{sb}/snapshot"));
    assert_eq!(r.status, 202);
    assert!(!r.complete);
    assert!(
        !r.text().contains("}"),
        "only part of the body arrived: {}",
        r.text()
    );
    assert_eq!(snapshot_count(&s), 1);

    // drop without after: nothing happens server-side.
    let sb2 = s.sandbox();
    fault(
        &s,
        json!({"method": "POST", "path": "*/snapshot", "drop": true}),
    );
    let r = s.post_empty(&format!("{P}/sandboxes/{sb2}/snapshot"));
    assert!(!r.complete);
    assert_eq!(snapshot_count(&s), 1);
    // An empty real body still ends in a dropped connection.
    let snap = s.get(&format!("{P}/snapshots")).json()["snapshots"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    fault(
        &s,
        json!({"method": "DELETE", "path": "/v1/namespaces/default/snapshots/*", "drop": true, "after": true}),
    );
    let r = s.delete(&format!("{P}/snapshots/{snap}"));
    assert!(!r.complete);
    assert_eq!(snapshot_count(&s), 0);
}

#[test]
fn truncate_sends_a_complete_response_with_half_the_body() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let full = s.get(&format!("{P}/sandboxes/{sb}")).body;
    fault(
        &s,
        json!({"path": "/v1/namespaces/default/sandboxes/*", "truncate": true}),
    );
    let r = s.get(&format!("{P}/sandboxes/{sb}"));
    assert_eq!(r.status, 200);
    assert!(r.complete, "Content-Length matches the cut body");
    assert_eq!(
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        full.len() / 2
    );
    assert_eq!(r.body, full[..full.len() / 2].to_vec());
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    assert!(r.content_type().starts_with("application/json"));
}

#[test]
fn non_json_answers_an_html_page() {
    let s = Server::start(&[]);
    fault(
        &s,
        json!({"path": "/v1/namespaces/default/snapshots", "non_json": true}),
    );
    let r = s.get(&format!("{P}/snapshots"));
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("text/html"),
        "{}",
        r.content_type()
    );
    assert!(r.text().contains("<html"));
    fault(
        &s,
        json!({"path": "/v1/namespaces/default/snapshots", "non_json": true, "status": 502}),
    );
    let r = s.get(&format!("{P}/snapshots"));
    assert_eq!(r.status, 502);
    assert!(r.content_type().starts_with("text/html"));
}

#[test]
fn delay_alone_and_combined() {
    let s = Server::start(&[]);
    fault(
        &s,
        json!({"path": "/v1/namespaces/default/snapshots", "delay_ms": 400}),
    );
    let t0 = Instant::now();
    let r = s.get(&format!("{P}/snapshots"));
    assert!(t0.elapsed() >= Duration::from_millis(400));
    assert_eq!(r.status, 200, "delay alone still answers for real");
    assert_eq!(r.json(), json!({"snapshots": []}));

    fault(
        &s,
        json!({"path": "/v1/namespaces/default/snapshots", "delay_ms": 300, "status": 503}),
    );
    let t0 = Instant::now();
    let r = s.get(&format!("{P}/snapshots"));
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status, 503);
    let t0 = Instant::now();
    s.get(&format!("{P}/snapshots"));
    assert!(t0.elapsed() < Duration::from_millis(300), "one use only");
}

#[test]
fn faults_apply_to_daemon_routes_and_the_log_records_them() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let id = fault(
        &s,
        json!({"method": "POST", "path": "/api/v1/processes/run", "status": 503}),
    );
    let r = s.req(
        "POST",
        "/api/v1/processes/run",
        &[("X-Tensorlake-Sandbox-Id", sb.as_str())],
        Some(b"{\"command\":\"true\"}"),
    );
    assert_eq!(r.status, 503);
    let log = s.requests();
    let last = log.last().unwrap();
    assert_eq!(last["path"], "/api/v1/processes/run");
    assert_eq!(last["status"], 503);
    assert_eq!(last["fault"], id.as_str());
    // A run with `after` + truncate still streamed the real output, then was cut.
    fault(
        &s,
        json!({"method": "POST", "path": "/api/v1/processes/run", "truncate": true}),
    );
    let r = s.req(
        "POST",
        "/api/v1/processes/run",
        &[("X-Tensorlake-Sandbox-Id", sb.as_str())],
        Some(b"{\"command\":\"echo\",\"args\":[\"hello there\"]}"),
    );
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("data: {\"pid\""), "{}", r.text());
    assert!(
        !r.text().contains("exit_code"),
        "the exit frame is in the cut half: {}",
        r.text()
    );
}

#[test]
fn admin_routes_and_preflights_never_match_and_validation_names_fields() {
    let s = Server::start(&[]);
    fault(&s, json!({"path": "*", "status": 500, "count": 5}));
    assert_eq!(s.get("/_admin/faults").status, 200);
    let pre = s.req(
        "OPTIONS",
        "/snapshots",
        &[
            ("Origin", "http://localhost:3000"),
            ("Access-Control-Request-Method", "GET"),
        ],
        None,
    );
    assert_eq!(pre.status, 204);
    assert_eq!(s.get("/_admin/faults").json()["faults"][0]["remaining"], 5);
    assert_eq!(s.req("DELETE", "/_admin/faults", &[], None).status, 204);
    assert_eq!(s.get("/snapshots").status, 200);

    for (spec, needle) in [
        (json!({"status": 503}), "path"),
        (json!({"path": "/x"}), "at least one"),
        (json!({"path": "/x", "status": 99}), "status"),
        (
            json!({"path": "/x", "drop": true, "truncate": true}),
            "drop",
        ),
        (json!({"path": "/x", "count": 0, "status": 500}), "count"),
        (json!({"path": "/x", "statuss": 500}), "statuss"),
        (json!({"path": "/x", "status": "500"}), "status"),
    ] {
        let r = s.post_json("/_admin/faults", &spec);
        assert!(r.status == 400 || r.status == 422, "{spec}: {}", r.status);
        assert!(r.text().contains(needle), "{spec}: {}", r.text());
    }
    let r = s.req("POST", "/_admin/faults", &[], Some(b"not json"));
    assert_eq!(r.status, 400);
}

#[test]
fn request_log_reset_and_timing() {
    let s = Server::start(&["--snapshot-local-ready-ms", "123"]);
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    s.req(
        "GET",
        &format!("{P}/snapshots"),
        &[("traceparent", tp), ("Authorization", "Bearer abc")],
        None,
    );
    s.get(&format!("{P}/sandboxes"));
    let log = s.requests();
    assert_eq!(log.len(), 2, "admin requests are not logged: {log:?}");
    assert_eq!(log[0]["method"], "GET");
    assert_eq!(log[0]["path"], "/v1/namespaces/default/snapshots");
    assert_eq!(log[0]["status"], 200);
    assert!(log[0]["ms"].is_number());
    assert_eq!(log[0]["traceparent"], tp);
    assert_eq!(log[0]["authorized"], true);
    assert_eq!(log[1]["authorized"], false);
    assert!(log[1]["traceparent"].is_null());
    assert!(
        !s.get("/_admin/requests").text().contains("abc"),
        "never the Authorization value"
    );

    let sb = s.sandbox();
    fault(&s, json!({"path": "*", "status": 500}));
    s.post_json(
        "/_admin/snapshot-failures",
        &json!({"sandbox_id": sb, "error": "x"}),
    );
    assert_eq!(
        s.put_json("/_admin/timing", &json!({"snapshot_local_ready_ms": 5}))
            .json()["snapshot_local_ready_ms"],
        5
    );
    assert_eq!(
        s.put_json("/_admin/timing", &json!({"snapshot_local_ready_ms": -5}))
            .status,
        422
    );
    let r = s.post_empty("/_admin/reset");
    assert_eq!(r.status, 204);
    assert_eq!(s.get("/_admin/faults").json()["faults"], json!([]));
    assert_eq!(
        s.get("/_admin/snapshot-failures").json()["failures"],
        json!({})
    );
    assert_eq!(s.requests().len(), 0);
    assert_eq!(
        s.get("/_admin/timing").json()["snapshot_local_ready_ms"],
        123
    );
    // Data is kept.
    assert_eq!(
        s.get(&format!("{P}/sandboxes")).json()["sandboxes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn request_log_keeps_the_last_ten_thousand() {
    let s = Server::start(&[]);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    // Keep-alive, pipelined: 10,050 requests quickly.
    use std::io::{Read, Write};
    let req = format!(
        "GET /snapshots HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        s.port
    );
    let n = 10_050;
    let writer = {
        let mut w = conn.try_clone().unwrap();
        let req = req.clone();
        std::thread::spawn(move || {
            for _ in 0..n {
                w.write_all(req.as_bytes()).unwrap();
            }
        })
    };
    let mut seen = 0;
    let mut buf = vec![0u8; 1 << 16];
    let mut carry = Vec::new();
    while seen < n {
        let k = conn.read(&mut buf).unwrap();
        assert!(k > 0);
        carry.extend_from_slice(&buf[..k]);
        while let Some(pos) = carry.windows(16).position(|w| w == b"{\"snapshots\":[]}") {
            seen += 1;
            carry.drain(..pos + 16);
        }
    }
    writer.join().unwrap();
    let log = s.requests();
    assert_eq!(log.len(), 10_000);
}
