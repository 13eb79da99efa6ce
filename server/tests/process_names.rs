//! Processes found by name: `POST /api/v1/processes` with `name`, then every `{pid|name}` route
//! (get, output, signal, kill) with the percent-encoded name, as the official SDKs send it.

mod common;

use common::{eventually, Server};
use serde_json::{json, Value};

fn hdr(sb: &str) -> Vec<(&str, &str)> {
    vec![
        ("X-Tensorlake-Sandbox-Id", sb),
        ("Content-Type", "application/json"),
    ]
}

fn start(s: &Server, sb: &str, body: Value) -> common::Resp {
    let b = body.to_string();
    s.req("POST", "/api/v1/processes", &hdr(sb), Some(b.as_bytes()))
}

fn get(s: &Server, sb: &str, segment: &str) -> common::Resp {
    s.req("GET", &format!("/api/v1/processes/{segment}"), &hdr(sb), None)
}

#[test]
fn a_named_process_is_found_by_its_name_on_every_route() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let r = start(
        &s,
        &sb,
        json!({"command": "sh", "args": ["-c", "echo ready; sleep 30"], "name": "web server"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let pid = r.json()["pid"].as_i64().unwrap();
    assert_eq!(r.json()["name"], "web server");

    let by_name = get(&s, &sb, "web%20server");
    assert_eq!(by_name.status, 200, "{}", by_name.text());
    assert_eq!(by_name.json()["pid"], pid);
    assert_eq!(by_name.json()["name"], "web server");
    eventually(15, "the named process's output", || {
        let out = get(&s, &sb, "web%20server/stdout");
        out.status == 200 && out.json()["lines"] == json!(["ready"])
    });

    // A second running process may not take the name; an unknown name is a 404.
    let dup = start(&s, &sb, json!({"command": "sleep", "args": ["30"], "name": "web server"}));
    assert_eq!(dup.status, 409, "{}", dup.text());
    assert_eq!(dup.json()["code"], "PROCESS_NAME_IN_USE");
    assert_eq!(get(&s, &sb, "nobody").status, 404);

    // Signal and kill by name.
    let b = json!({"signal": 15}).to_string();
    let sig = s.req(
        "POST",
        "/api/v1/processes/web%20server/signal",
        &hdr(&sb),
        Some(b.as_bytes()),
    );
    assert_eq!(sig.status, 200, "{}", sig.text());
    eventually(15, "the signalled process ends", || {
        get(&s, &sb, "web%20server").json()["status"] != "running"
    });

    // Once it has ended the name is free again, and the newest process answers to it.
    let again = start(&s, &sb, json!({"command": "sleep", "args": ["30"], "name": "web server"}));
    assert_eq!(again.status, 201, "{}", again.text());
    let newest = again.json()["pid"].as_i64().unwrap();
    assert_ne!(newest, pid);
    assert_eq!(get(&s, &sb, "web%20server").json()["pid"], newest);
    let kill = s.req("DELETE", "/api/v1/processes/web%20server", &hdr(&sb), None);
    assert!(kill.status == 204 || kill.status == 200, "{}", kill.text());
    eventually(15, "the killed process ends", || {
        get(&s, &sb, &newest.to_string()).json()["status"] != "running"
    });
    // Unnamed processes report no name.
    let plain = start(&s, &sb, json!({"command": "true"}));
    assert_eq!(plain.json()["name"], Value::Null);
}

#[test]
fn names_that_cannot_be_told_from_a_pid_or_a_path_are_refused() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let long = "n".repeat(129);
    for bad in ["", "1234", "a/b", "tab\there", long.as_str()] {
        let r = start(&s, &sb, json!({"command": "true", "name": bad}));
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
        assert!(r.text().contains("`name`"), "{}", r.text());
        assert!(r.text().len() < 600, "the error echoes a long name: {}", r.text());
    }
    let r = start(&s, &sb, json!({"command": "true", "name": 7}));
    assert!(r.status == 400 || r.status == 422, "{}", r.text());
}
